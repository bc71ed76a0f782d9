"""Ensemble generation over the in-process backend (`LocalBackend`) and over gRPC (embedded server on loopback)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_service_pb2_grpc

from compose.loop import generate
from compose.sampler import SamplingOptions
from music.request import TrackRequest, plan_track
from music.tokens import BAR, EOS, Representation
from serving.client import ServingClient
from serving.errors import ModelNotFound, ServingTimeout, ServingUnavailable, VocabularyMismatch
from serving.local import open_local_backend
from serving.server import EmbeddedServer, config_for_models_dir
from tests.support.contract_models import make_contract_models
from tests.support.tiny_models import make_tiny_models

REP = Representation()


def _plan(seconds=20, mood="rainy", seed=3):
    return plan_track(TrackRequest(seconds, mood, seed))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_generated_tokens_decode_to_the_planned_bars(tiny_backend):
    plan = _plan()
    gen = await generate(tiny_backend, plan)
    toks = REP.vocab.strs(gen.tokens[0])
    score = REP.decode(gen.tokens[0], tonic=plan.tonic, bpm=plan.bpm)
    assert toks[:5] == list(plan.header) and toks[-1] == EOS
    assert score.n_bars == plan.n_bars == toks.count(BAR)
    assert gen.versions == {"lofi_member_0": 1, "lofi_member_1": 1}
    assert max(n.start + n.duration for n in score.melody) <= score.total_ticks  # ends on the bar line


async def test_last_bar_opens_on_the_tonic_chord(tiny_backend):
    plan = _plan(mood="rainy")
    toks = REP.vocab.strs((await generate(tiny_backend, plan)).tokens[0])
    last = len(toks) - 1 - toks[::-1].index(BAR)
    assert toks[last + 1] == "POS_0"
    assert toks[last + 2].startswith("CHORD_0_min") and toks[last + 3] == "BASS_0"


async def test_same_seed_same_tokens_and_grpc_matches_in_process(tiny_backend, tiny_server):
    """The same seed gives the same tokens in process (`LocalBackend` over the server's store) and over gRPC."""
    plan = _plan()
    a = await generate(tiny_backend, plan)
    b = await generate(tiny_backend, plan)
    async with ServingClient(tiny_server.address) as client:
        c = await generate(client, plan)
    other = await generate(tiny_backend, plan, seed=99)
    assert a.tokens == b.tokens == c.tokens
    assert other.tokens != a.tokens


async def test_batch_of_sequences_all_decode(tiny_backend):
    plan = _plan(seconds=15)
    gen = await generate(tiny_backend, plan, n=3, options=SamplingOptions(top_k=20))
    assert len(gen.tokens) == 3 and len({tuple(t) for t in gen.tokens}) == 3
    for t in gen.tokens:
        assert REP.decode(t).n_bars == plan.n_bars


async def test_geometric_combine_with_weights(tmp_path):
    make_tiny_models(
        tmp_path, members=3, version=1, combine={"method": "geometric", "weights": [0.5, 0.25, 0.25]}
    )
    plan = _plan(seconds=15)
    async with open_local_backend(tmp_path) as backend:
        gen = await generate(backend, plan)
    assert len(gen.versions) == 3
    assert REP.decode(gen.tokens[0]).n_bars == plan.n_bars


async def test_foreign_vocabulary_is_refused(tmp_path):
    vocab = list(REP.vocab.tokens)
    vocab[-1] = "DUR_999"
    make_contract_models(tmp_path, members=1, version=1, vocab=vocab)
    async with open_local_backend(tmp_path) as backend:
        with pytest.raises(VocabularyMismatch, match="lofi_member_0 version 1"):
            await generate(backend, _plan())


class SwapMidway:
    """Delegates to the client; at its 10th Predict exports version 2 and waits until the server serves it."""

    def __init__(self, client, models):
        self.client, self.models, self.calls = client, models, 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    async def predict(self, name, version, tokens, cond, aux):
        self.calls += 1
        if self.calls == 10:
            await asyncio.to_thread(make_tiny_models, self.models, members=2, version=2)
            # Loading two SavedModels takes ~1 s on a quiet machine and over 20 s on a loaded one: wait for the
            # server by a generous deadline, not a count of polls (the swap is what is tested, not its speed).
            deadline = time.monotonic() + 180
            want = {"lofi_member_0": 2, "lofi_member_1": 2}
            while await self.client.latest_versions(list(want)) != want:
                assert time.monotonic() < deadline, "the server never served version 2"
                await asyncio.sleep(0.05)
        return await self.client.predict(name, version, tokens, cond, aux)


async def test_versions_stay_pinned_through_a_hot_swap(tmp_path, tiny_models):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    plan = _plan(seconds=20)
    with EmbeddedServer(config_for_models_dir(models), poll_s=0.1) as srv:
        async with ServingClient(srv.address) as client:
            backend = SwapMidway(client, models)
            first = await generate(backend, plan)
            assert backend.calls > 20
            assert first.versions == {"lofi_member_0": 1, "lofi_member_1": 1}
            assert set(client.served) == {("lofi_member_0", 1), ("lofi_member_1", 1)}
            client.served.clear()
            second = await generate(client, plan)
            assert second.versions == {"lofi_member_0": 2, "lofi_member_1": 2}
            assert set(client.served) == {("lofi_member_0", 2), ("lofi_member_1", 2)}


async def test_track_restarts_on_new_versions_if_its_version_is_unloaded(tmp_path, tiny_models):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    plan = _plan(seconds=15)
    with EmbeddedServer(config_for_models_dir(models, num_versions=1), poll_s=0.1) as srv:
        async with ServingClient(srv.address) as client:
            gen = await generate(SwapMidway(client, models), plan)
            assert gen.versions == {"lofi_member_0": 2, "lofi_member_1": 2}
            assert REP.decode(gen.tokens[0]).n_bars == plan.n_bars


async def test_server_down_is_a_clear_error_in_bounded_time():
    client = ServingClient(f"127.0.0.1:{_free_port()}", timeout_s=0.5, retries=2, backoff_s=0.05)
    t0 = time.monotonic()
    with pytest.raises(ServingUnavailable, match="unavailable"):
        await generate(client, _plan())
    assert time.monotonic() - t0 < 5
    await client.close()


async def test_slow_server_times_out():
    class Slow(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):  # noqa: N802
            time.sleep(1.0)
            raise AssertionError("too late")

    server = grpc.server(futures.ThreadPoolExecutor(4))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Slow(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = ServingClient(f"127.0.0.1:{port}", timeout_s=0.2, retries=1, backoff_s=0.05)
        t0 = time.monotonic()
        with pytest.raises(ServingTimeout, match="did not answer within 0.2s"):
            await generate(client, _plan())
        assert time.monotonic() - t0 < 2
        await client.close()
    finally:
        server.stop(0)


async def test_unknown_version_is_model_not_found(tiny_server):
    async with ServingClient(tiny_server.address) as client:
        window = (await client.manifest("lofi_member_0", 1)).window
        with pytest.raises(ModelNotFound, match=r"Specific\(lofi_member_0, 7\)"):
            await client.predict(
                "lofi_member_0",
                7,
                np.zeros((1, window), np.int32),
                np.zeros((1, 4), np.int32),
                np.zeros((1, 6), np.int32),
            )
        assert await client.latest_versions(["lofi_member_0"]) == {"lofi_member_0": 1}
        assert await client.window("lofi_member_0", 1) == window
        assert await client.members() == ["lofi_member_0", "lofi_member_1"]


class Recording:
    """Delegates to a backend and keeps every `aux` batch it was sent."""

    def __init__(self, backend):
        self.backend, self.aux = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    async def predict(self, name, version, tokens, cond, aux):
        if name == "lofi_member_0":
            self.aux.append(aux.copy())
        return await self.backend.predict(name, version, tokens, cond, aux)


def _record_forced_steps(monkeypatch) -> list[int]:
    """The step numbers at which a sequence took its only allowed token without asking the models."""
    import compose.loop as generation

    steps, original = [], generation.forced

    def forced(mask, s):
        steps.append(s.steps)
        return original(mask, s)

    monkeypatch.setattr(generation, "forced", forced)
    return steps


async def test_models_see_the_state_features_training_computes(tiny_backend, monkeypatch):
    from music.tokens import AUX_FEATURES, aux_rows

    forced = _record_forced_steps(monkeypatch)
    rec = Recording(tiny_backend)
    gen = await generate(rec, _plan(seconds=15))
    sent = np.concatenate(rec.aux)
    seq = [REP.vocab.id("BOS")] + gen.tokens[0][5:]
    # row i + 1: the state before body token i, sent at step i unless that token was forced
    asked = [i + 1 for i in range(len(seq) - 1) if i not in set(forced)]
    assert forced and len(asked) == len(sent)
    expected = aux_rows(REP, seq)[asked]
    same = [i for i, f in enumerate(AUX_FEATURES) if f != "notes_left"]  # notes_left: planned vs counted
    np.testing.assert_array_equal(sent[:, same], expected[:, same])


async def test_forced_tokens_ask_no_model(tiny_backend, monkeypatch):
    forced = _record_forced_steps(monkeypatch)
    rec = Recording(tiny_backend)
    gen = await generate(rec, _plan(seconds=60, mood="chill", seed=5))  # returning bars are copied
    assert len(forced) > gen.steps // 5
    assert len(rec.aux) == gen.steps - len(forced)  # one call per step that had a choice


@pytest.mark.parametrize("p_at_token", [0.0, 0.3])
def test_a_forced_token_draws_what_sampling_would(p_at_token):
    """Taking a forced token without the models leaves every later token as it was: the same token and the
    same random draw as sampling it from any probabilities."""
    from compose.sampler import SequenceState, TokenMasks, forced, sample

    plan, opts, mk = _plan(), SamplingOptions(), TokenMasks(REP)
    sampled, forcing = (SequenceState(REP, plan, 3, 0, opts) for _ in range(2))
    p = np.random.default_rng(0).random(len(REP.vocab))
    only = REP.vocab.id("BAR")
    p[only] = p_at_token  # with no mass there, sample falls back to uniform over the mask
    mask = np.zeros(len(REP.vocab), bool)
    mask[only] = True
    assert sample(p, mask, sampled, mk, opts) == forced(mask, forcing) == only
    assert sampled.rng.random() == forcing.rng.random()


def _bars(tokens):
    toks = REP.vocab.strs(tokens)[5:]
    bars, cur = [], None
    for t in toks:
        if t == BAR:
            cur = []
            bars.append(cur)
        elif t != EOS:
            cur.append(t)
    return bars


def _chords(bar):
    return [t for t in bar if t.startswith(("CHORD_", "BASS_", "VOICING_"))]


async def test_generation_follows_the_planned_form(tiny_backend):
    plan = _plan(seconds=60, mood="chill", seed=5)
    gen = await generate(tiny_backend, plan)
    bars = _bars(gen.tokens[0])
    assert len(bars) == plan.n_bars == len(plan.form)
    opening = bars[0]
    assert opening[0] == "POS_0" and opening[1].startswith("CHORD_0_maj") and opening[2] == "BASS_0"
    copies = 0
    for b, bar in enumerate(plan.form):
        pitches = [t for t in bars[b] if t.startswith("PITCH_")]
        if bar.notes == 0:
            assert not pitches, f"bar {b} was planned without melody"
        if bar.melody_from is not None:
            # The pitches return as written; a duration may be cut where the note would ring past the end.
            src = [t for t in bars[bar.melody_from] if t.startswith("PITCH_")]
            assert [t for t in bars[b] if t.startswith("PITCH_")] == src
            copies += 1
        if bar.chords_from is not None:
            src_chords = _chords(bars[bar.chords_from])
            if src_chords and bars[bar.chords_from][0] == "POS_0":
                assert _chords(bars[b]) == src_chords
            copies += 1
    assert copies >= 4


async def test_form_can_be_switched_off(tiny_backend):
    plan = _plan(seconds=30, seed=2)
    gen = await generate(tiny_backend, plan, options=SamplingOptions(form=False))
    assert REP.decode(gen.tokens[0]).n_bars == plan.n_bars
