"""Numbers more than one layer needs, defined once."""

SEED_MAX = 2**31 - 1  # seeds are 0..SEED_MAX (a signed 32-bit int: Discord's integer options and SQLite)
MIN_BPM, MAX_BPM = 40, 200  # the tempo a request may ask for (music.request.TrackRequest checks it)
DRUM_CHANNEL = 9  # General MIDI percussion, 0-based as in MIDI bytes and mido (music21 numbers it 10)
