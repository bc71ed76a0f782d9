"""The radio on the real chain, slow: tiny real models behind the embedded gRPC server, the real `/lofi`
pipeline (generation, FluidSynth, effects, MP3), decoded to 48 kHz and streamed to the fake voice server."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bot.radio.audio import load_pcm
from bot.radio.station import RadioConfig
from tests.e2e.fake_voice import audio_of, max_gap_ms, rms_dbfs
from tests.e2e.radio_helpers import listener_in_voice, wait_until
from tests.e2e.test_radio_e2e import check_continuous, now_playing

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tiny_serving(tmp_path_factory):
    """Two tiny trained members served by `lofi serve` in its own process, as TF Serving would be (an
    in-process server's TensorFlow would compete with the audio thread for the GIL)."""
    import socket
    import subprocess
    import sys
    from types import SimpleNamespace

    import grpc

    from tests.support.tiny_models import make_tiny_models

    models = tmp_path_factory.mktemp("models")
    make_tiny_models(models, members=2, seed=0, version=1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lofi.cli", "serve", "--model_config_file", str(models / "models.config")]
        + ["--port", str(port), "--file_system_poll_wait_seconds", "0"],
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=120)
        yield SimpleNamespace(address=f"127.0.0.1:{port}"), models
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_radio_streams_pieces_made_by_the_real_pipeline(
    fake_discord, fake_voice, radio_bot, tiny_serving
):
    from db.models import Track

    server, models = tiny_serving
    listener_in_voice(fake_discord)
    config = RadioConfig(piece_length_s=15.0, crossfade_s=2.0, ahead_s=16.0, first_piece_timeout_s=300)
    bot = await radio_bot(
        None,  # the resources `lofi bot` opens: the real engine, the radio's worker process
        radio=config,
        serving_address=server.address,
        models_dir=models,
        serving_timeout_s=30.0,
        min_length_s=15.0,
    )
    state = await fake_discord.send_interaction("lofi-radio", {"start": {"mood": "rainy"}})
    await fake_discord.wait_for(lambda r: r.kind == "followup" and r.interaction_id == state.id, timeout=300)
    first = await fake_voice.wait_frames(1, timeout=30)
    frames = await fake_voice.wait_frames(250, since=first[0].t, timeout=30)  # 5 s of what a listener hears
    frames = frames[:250]
    # every frame, in order; arrival gaps within `gap_bound_ms` (60 ms unless the machine is oversubscribed)
    check_continuous(frames)
    print(f"max gap {max_gap_ms(frames):.0f} ms at load {os.getloadavg()[0]:.1f}")
    heard = audio_of(frames)
    assert rms_dbfs(heard) > -40, "silence"

    await wait_until(lambda: now_playing(fake_discord), what="the now-playing message")
    track_id = int(
        now_playing(fake_discord)[0]["components"][0]["components"][0]["custom_id"].rsplit(":", 1)[1]
    )
    async with bot.sessionmaker() as s:
        track = await s.get(Track, track_id)
    assert track.status == "done" and track.tokens and track.length_s >= 12
    # the station went on air when its first piece was ready and the guild tuned in live once connected, so
    # what it heard starts somewhere in that piece: find where (cross-correlation by FFT), then compare
    piece = load_pcm(track.mp3_path)
    a, b = heard[48_000:96_000, 0].astype(float), piece[:, 0].astype(float)
    size = 1 << (len(a) + len(b)).bit_length()
    xc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: len(b) - len(a)]
    at = int(np.argmax(xc))
    assert at >= 48_000 - 1200  # joined at or after the piece's start (less Opus's look-ahead)
    # the same music, sample for sample (Opus at 128 kb/s, decoded), at the rendered track's level
    corr = float(np.corrcoef(a, b[at : at + len(a)])[0, 1])
    assert corr > 0.8, corr
    start = max(0, at - 48_000)
    rendered = piece[start : start + len(heard)]
    assert abs(rms_dbfs(heard) - rms_dbfs(rendered)) < 1.5
    radio = bot.radio.get(int(fake_discord.guild_id))
    assert radio.station.stream.underruns == 0
    fake_discord.assert_no_errors()
