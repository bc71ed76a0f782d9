"""`python -m lofi.cli`."""

import sys

from lofi.cli import main

sys.exit(main())
