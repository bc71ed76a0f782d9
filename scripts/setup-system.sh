#!/usr/bin/env bash
# Installs the Debian packages the project needs (idempotent, quick when already done):
#   fluidsynth          the MIDI renderer
#   ffmpeg              MP3 encoding for pydub and the independent loudness meter (ebur128)
#   fluid-soundfont-gm  FluidR3_GM, the General MIDI soundfont (MIT): every part, and the fallback
#   avldrums.lv2-soundfont  AVL Drumkits (Glen MacArthur, CC-BY-SA-3.0): the drums (music/instruments.py);
#                       without it the drums play FluidR3's kit
#   postgresql          PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin): the database tests start a
#                       throw-away cluster of their own; Debian's default cluster is not used
#   libopus0            the Opus codec discord.py's voice client encodes the radio with (loaded with ctypes)
#   openssl             the e2e tests' fake voice server makes its self-signed certificate with it
#   redis-server        the job engine's broker (BROKER_URL): the tests start throw-away servers of their own
set -euo pipefail
need=()
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2 ] || need+=(avldrums.lv2-soundfont)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ -n "$(ls /usr/lib/*/libopus.so.0 /lib/*/libopus.so.0 2>/dev/null)" ] || need+=(libopus0)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup: installing Debian packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
