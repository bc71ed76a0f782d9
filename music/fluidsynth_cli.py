"""MIDI -> audio with the FluidSynth command line (44.1 kHz stereo float arrays): the fallback when pyfluidsynth
cannot keep a synthesizer in the process (`music.synth`), and the reference its tests compare with."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from music.childenv import child_env
from music.errors import RenderError
from music.render_config import SAMPLE_RATE, SILENCE_PEAK, check_soundfont


def fluidsynth_binary() -> str:
    """Path of the fluidsynth executable; RenderError when it is not installed."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderError("fluidsynth is not installed (apt-get install fluidsynth)")
    return exe


def render_midi(
    midi: Path,
    soundfont: Path,
    *,
    gain: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
    seconds: float | None = None,
    timeout_s: float = 120.0,
    allow_silent: bool = False,
) -> np.ndarray:
    """Render `midi` with FluidSynth (its own reverb and chorus off: the effects chain adds ours; only the
    presets the file uses are loaded).

    Args:
        midi: a standard MIDI file.
        soundfont: an .sf2 file.
        gain: FluidSynth's master gain.
        sample_rate: output rate in Hz.
        seconds: if given, the result is cut or zero-padded to exactly this length.
        timeout_s: kill FluidSynth after this long.
        allow_silent: do not raise for a silent result (a stem that may be empty).
    Returns:
        float32 array of shape (2, samples).
    Raises:
        RenderError: missing/broken soundfont, FluidSynth failure or timeout, silent output.
    """
    check_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="lofi-render-") as tmp:
        wav = Path(tmp) / "out.wav"
        _run_fluidsynth(_command(soundfont, midi, wav, gain, sample_rate), midi, soundfont, timeout_s)
        audio = read_wav(wav)
    if seconds is not None:
        n = int(round(seconds * sample_rate))
        audio = audio[:, :n] if audio.shape[1] >= n else np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
    if not allow_silent and (audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK):
        raise RenderError(
            f"fluidsynth rendered silence for {midi} with {soundfont} (broken soundfont or empty MIDI?)"
        )
    return np.ascontiguousarray(audio, dtype=np.float32)


def _command(soundfont: Path, midi: Path, wav: Path, gain: float, sample_rate: int) -> list[str]:
    """FluidSynth's command line: no shell, no reverb or chorus, float WAV out."""
    return [
        fluidsynth_binary(),
        "-ni",
        "-q",
        "-R",
        "0",
        "-C",
        "0",
        "-o",
        "synth.dynamic-sample-loading=1",  # load only the presets used: ~0.1 s less per process
        "-g",
        f"{gain:.3f}",
        "-r",
        str(sample_rate),
        "-O",
        "float",
        "-T",
        "wav",
        "-F",
        str(wav),
        str(soundfont),
        str(midi),
    ]


def _run_fluidsynth(cmd: list[str], midi: Path, soundfont: Path, timeout_s: float) -> None:
    """Run `cmd`; RenderError for a timeout, a failure, a soundfont it could not load or no audio written."""
    wav = Path(cmd[cmd.index("-F") + 1])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False, env=child_env())
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"fluidsynth took longer than {timeout_s:.0f} s on {midi}") from exc
    err = (proc.stderr or b"").decode(errors="replace") + (proc.stdout or b"").decode(errors="replace")
    if proc.returncode != 0:
        raise RenderError(f"fluidsynth failed (exit {proc.returncode}) on {midi}: {err.strip()[-500:]}")
    if "failed to load" in err.lower() or "not a soundfont" in err.lower():
        raise RenderError(f"fluidsynth could not load the soundfont {soundfont}: {err.strip()[-500:]}")
    if not wav.exists() or wav.stat().st_size <= 44:
        raise RenderError(f"fluidsynth wrote no audio for {midi}: {err.strip()[-500:]}")


def read_wav(path: Path) -> np.ndarray:
    """A WAV file as float32 (channels, samples), mono made stereo."""
    import warnings

    from scipy.io import wavfile

    with warnings.catch_warnings():  # FluidSynth writes a LIST chunk scipy does not parse
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        _, data = wavfile.read(path)
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        data = data.astype(np.float32) / 2147483648.0
    data = np.asarray(data, dtype=np.float32)
    data = np.stack([data, data]) if data.ndim == 1 else data.T
    return data
