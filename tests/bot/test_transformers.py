"""DurationTransformer: human lengths to seconds within the configured range, clear errors otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.errors import BadLength
from bot.transformers import DurationTransformer
from lofi.settings import Settings


async def _length(text: str, min_s: float, max_s: float) -> float:
    return await DurationTransformer().transform(_interaction(min_length_s=min_s, max_length_s=max_s), text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2m", 120), ("90s", 90), ("1m30s", 90), ("1:30", 90), ("120", 120), (" 2m ", 120)]
)
async def test_accepted_forms(text, seconds):
    assert await _length(text, 15, 600) == seconds


@pytest.mark.parametrize("text", ["", "abc", "2x", "-5", "0"])
async def test_unreadable_is_bad_length(text):
    with pytest.raises(BadLength) as err:
        await _length(text, 15, 600)
    assert "length" in str(err.value).lower()


async def test_out_of_range_names_the_range():
    with pytest.raises(BadLength) as err:
        await _length("20m", 15, 600)
    assert "15s" in str(err.value) and "10m00s" in str(err.value) and "20m00s" in str(err.value)
    with pytest.raises(BadLength):
        await _length("5s", 15, 600)


def _interaction(**kw):
    return SimpleNamespace(client=SimpleNamespace(settings=Settings(_env_file=None, **kw)))


async def test_transformer_uses_bot_settings():
    t = DurationTransformer()
    assert await t.transform(_interaction(min_length_s=10, max_length_s=60), "1m") == 60
    with pytest.raises(BadLength):
        await t.transform(_interaction(min_length_s=10, max_length_s=60), "2m")


async def test_autocomplete_offers_lengths_in_range():
    choices = await DurationTransformer().autocomplete(_interaction(min_length_s=15, max_length_s=120), "1")
    assert [c.value for c in choices] == ["1m", "1m30s"]
