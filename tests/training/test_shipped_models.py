"""The trained ensemble shipped in models/ is the one this code was written for, and it plays.

A fresh clone's `make run` serves these models without training, so they must keep matching the code:
the vocabulary, the representation (its `aux` features), the serving contract, the provenance. A change
to any of them that is not followed by a retrain (`lofi train --preset full`, then copying the export
here as `scripts/ship-models.sh` does) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from music.tokens import REPR_VERSION, Representation
from serving import contract

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
PROVENANCE = MODELS / "PROVENANCE.json"


def _shipped() -> tuple[dict, list[Path]]:
    prov = json.loads(PROVENANCE.read_text())
    version = prov["version"]
    dirs = [MODELS / contract.model_name(i) / str(version) for i in range(prov["members"])]
    return prov, dirs


def test_provenance_says_how_the_models_were_made():
    prov, dirs = _shipped()
    assert prov["command"].startswith("lofi train") and len(prov["commit"]) == 40
    assert prov["representation"] == REPR_VERSION
    assert {"ensemble", "best_ngram", "members"} <= set(prov["test"])
    assert prov["test"]["ensemble"]["perplexity"] < prov["test"]["best_ngram"]["perplexity"]
    for d in dirs:
        assert (d / "saved_model.pb").is_file() and (d / contract.MANIFEST_FILE).is_file()


def test_every_member_matches_this_codes_vocabulary_and_representation():
    _, dirs = _shipped()
    rep = Representation()
    for i, d in enumerate(dirs):
        m = contract.Manifest.from_json((d / contract.MANIFEST_FILE).read_text())
        assert m.vocab_sha256 == contract.vocab_sha256(rep.vocab.tokens), f"{d}: retrain and ship again"
        assert m.representation == rep.version, f"{d}: trained for {m.representation}, code is {rep.version}"
        assert m.member == i and m.members == len(dirs)


@pytest.mark.slow
async def test_the_shipped_ensemble_writes_a_track_that_decodes():
    from compose.loop import generate
    from music.request import TrackRequest, plan_track
    from serving.local import open_local_backend

    plan = plan_track(TrackRequest(15, "rainy", 1))
    async with open_local_backend(MODELS) as backend:
        gen = await generate(backend, plan)
    score = Representation().decode(gen.tokens[0], tonic=plan.tonic, bpm=plan.bpm)
    assert score.n_bars == plan.n_bars and score.melody and score.chords
