"""Generation from a prefix (the Extend button) in the shared loop: the original bars are kept, the plan's new
length is reached."""

from __future__ import annotations

import pytest

from compose.continuation import extended_plan, split_tokens
from compose.errors import GenerationError
from compose.loop import GenerationLoop, generate
from music.request import TrackRequest, plan_track
from music.tokens import Representation


async def generate_continuation(backend, plan, prefix, rep):
    loop = GenerationLoop(backend, rep=rep)
    try:
        return await loop.generate(plan, prefix=prefix)
    finally:
        await loop.close()


async def test_continuation_keeps_the_prefix_and_reaches_the_new_length(tiny_backend):
    rep = Representation()
    short = plan_track(TrackRequest(16, "rainy", 7), rep)
    first = (await generate(tiny_backend, short, rep=rep)).tokens[0]
    longer = extended_plan(short.request, short.seconds * 2, rep)
    assert longer.n_bars == 2 * short.n_bars
    assert (longer.tonic, longer.bpm, longer.header) == (short.tonic, short.bpm, short.header)

    gen = await generate_continuation(tiny_backend, longer, first, rep=rep)
    tokens = gen.tokens[0]
    _, body = split_tokens(first, short, rep)
    assert tokens[: len(short.header) + len(body)] == first[: len(short.header) + len(body)]
    assert tokens[-1] == rep.vocab.id("EOS")
    score = rep.decode(tokens, tonic=longer.tonic, bpm=longer.bpm)
    assert score.n_bars == longer.n_bars
    assert gen.steps > 0


async def test_a_prefix_as_long_as_the_plan_is_refused(tiny_backend):
    rep = Representation()
    plan = plan_track(TrackRequest(16, "chill", 3), rep)
    tokens = (await generate(tiny_backend, plan, rep=rep)).tokens[0]
    with pytest.raises(GenerationError, match="already has"):
        await generate_continuation(tiny_backend, plan, tokens, rep=rep)
