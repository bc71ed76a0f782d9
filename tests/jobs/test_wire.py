"""What crosses the broker: jobs, results with their files, failures by name; nothing else gets through."""

from __future__ import annotations

from dataclasses import replace

import pytest

from compose.errors import GenerationError
from compose.pipeline import TrackResult
from jobs.errors import JobFailed
from jobs.wire import (
    TrackJob,
    error_to_wire,
    failure_of,
    request_from_wire,
    request_to_wire,
    result_from_wire,
    result_to_wire,
)
from music.errors import KeyNameError, MoodError
from music.request import TrackRequest, plan_track
from music.track import TrackFiles
from serving.errors import ServingTimeout


def made_track(tmp_path) -> TrackResult:
    files = {}
    for name, data in (("t.mp3", b"ID3mp3-bytes"), ("t.mid", b"MThd-midi"), ("t.png", b"\x89PNG-cover")):
        (tmp_path / name).write_bytes(data)
        files[name] = tmp_path / name
    request = TrackRequest(length_s=30.0, mood="rainy", seed=7)
    track_files = TrackFiles(
        mp3=files["t.mp3"], midi=files["t.mid"], cover=files["t.png"], duration_s=30.0, bpm=72.0,
        key="A minor", mood="rainy", seed=7, title="hazy cassette", loudness_lufs=-14.2,
        true_peak_dbtp=-1.1, timings={"render": 0.5},
    )  # fmt: skip
    return TrackResult(track_files, [1, 2, 3], {"lofi_member_0": 4}, plan_track(request), {"total": 1.5})


def test_a_job_and_an_extension_survive_the_wire():
    new = TrackJob(TrackRequest(length_s=45.0, mood="chill", seed=3, bpm=80.0), size_limit=1000)
    longer = TrackJob(
        TrackRequest(length_s=75.0, mood="chill", seed=3), None, (5, 6, 7), TrackRequest(45.0, "chill", 3)
    )
    assert TrackJob.from_wire(new.to_wire()) == new
    assert TrackJob.from_wire(longer.to_wire()) == longer


def test_the_asked_key_crosses_the_wire_and_a_bad_one_is_refused():
    keyed = TrackRequest(length_s=45.0, mood="rainy", seed=3, key="eb maj")
    longer = TrackJob(replace(keyed, length_s=75.0), None, (5, 6, 7), keyed)
    assert request_from_wire(request_to_wire(keyed)).key == "Eb major"
    assert TrackJob.from_wire(longer.to_wire()) == longer
    older = {k: v for k, v in request_to_wire(keyed).items() if k != "key"}  # queued by a bot before keys
    assert request_from_wire(older).key is None
    with pytest.raises(KeyNameError, match="is not a key"):
        request_from_wire({**request_to_wire(keyed), "key": "H minor"})


def test_a_result_carries_its_files_and_facts(tmp_path):
    (tmp_path / "worker").mkdir()
    made = made_track(tmp_path / "worker")
    job = TrackJob(TrackRequest(length_s=30.0, mood="rainy", seed=7))
    got = result_from_wire(result_to_wire(made), job, tmp_path / "bot")
    assert got.files.mp3.parent == tmp_path / "bot"
    assert got.files.mp3.read_bytes() == b"ID3mp3-bytes" and got.files.cover.read_bytes() == b"\x89PNG-cover"
    assert (got.tokens, got.versions, got.files.key, got.files.title) == (
        [1, 2, 3],
        {"lofi_member_0": 4},
        "A minor",
        "hazy cassette",
    )
    assert got.plan == made.plan


def test_a_result_never_writes_outside_its_folder(tmp_path):
    wire = result_to_wire(made_track(tmp_path))
    wire["files"]["mp3"]["name"] = "../../escaped.mp3"
    got = result_from_wire(wire, TrackJob(TrackRequest(30.0, "rainy", 7)), tmp_path / "bot")
    assert got.files.mp3 == tmp_path / "bot" / "escaped.mp3"
    assert not (tmp_path.parent / "escaped.mp3").exists()
    wire["files"]["midi"]["name"] = ".."
    with pytest.raises(JobFailed, match="usable name"):
        result_from_wire(wire, TrackJob(TrackRequest(30.0, "rainy", 7)), tmp_path / "bot")


@pytest.mark.parametrize(
    ("error", "expected"),
    [(ServingTimeout("slow"), ServingTimeout), (GenerationError("bound"), GenerationError),
     (MoodError("no such mood"), MoodError), (KeyError("surprise"), JobFailed)],
)  # fmt: skip
def test_failures_arrive_as_the_errors_the_bot_knows(error, expected):
    got = failure_of(error_to_wire(error))
    assert type(got) is expected and str(error) in str(got)


def test_a_malformed_job_is_refused_with_its_reason():
    with pytest.raises(MoodError):
        TrackJob.from_wire({"request": {"length_s": 30, "mood": "evil", "seed": 1}})
    with pytest.raises(ValueError):
        TrackJob.from_wire({"request": {"length_s": -5, "mood": "rainy", "seed": 1}})


# ---- the Stems and Loop jobs (jobs.exports) ------------------------------------------------------------


def test_stems_and_loop_jobs_survive_the_wire_and_say_their_kind():
    from jobs.exports import ExportJob, job_from_wire

    facts = TrackRequest(length_s=20.004, mood="rainy", seed=7, bpm=72.0, key="D minor")
    stems = ExportJob("stems", (5, 6, 7), facts, size_limit=10 << 20)
    loop = ExportJob("loop", (5, 6, 7), facts, bars=8)
    assert job_from_wire(stems.to_wire()) == stems and job_from_wire(loop.to_wire()) == loop
    track = TrackJob(facts)
    assert track.to_wire()["kind"] == "track" and job_from_wire(track.to_wire()) == track
    older = {k: v for k, v in track.to_wire().items() if k != "kind"}  # queued by a bot before kinds
    assert job_from_wire(older) == track


@pytest.mark.parametrize(
    "payload",
    [{"kind": "mixdown", "tokens": [1], "facts": {"length_s": 20, "mood": "rainy", "seed": 1}},
     {"kind": "loop", "tokens": [1], "facts": {"length_s": 20, "mood": "rainy", "seed": 1}},  # no bars
     {"kind": "stems", "tokens": [1], "facts": {"length_s": 20, "mood": "evil", "seed": 1}},
     {"kind": "stems", "tokens": "abc", "facts": {"length_s": 20, "mood": "rainy", "seed": 1}}],
)  # fmt: skip
def test_a_malformed_export_job_is_refused(payload):
    from jobs.exports import job_from_wire

    with pytest.raises((KeyError, TypeError, ValueError)):
        job_from_wire(payload)


def test_an_export_result_carries_its_files_in_order_and_its_notes(tmp_path):
    from jobs.exports import export_from_wire, export_to_wire
    from music.producer_files import ExportFiles

    (tmp_path / "worker").mkdir()
    names = ["t_72bpm_Dmin_keys.wav", "t_72bpm_Dmin_keys.mid", "t_72bpm_Dmin_bass.mp3"]
    for i, name in enumerate(names):
        (tmp_path / "worker" / name).write_bytes(bytes([i]) * (i + 3))
    made = ExportFiles([tmp_path / "worker" / n for n in names], ["these are MP3."], 0.5)
    wire = export_to_wire(made)
    got = export_from_wire(wire, tmp_path / "bot")
    assert [p.name for p in got.files] == names and got.files[0].parent == tmp_path / "bot"
    assert got.files[2].read_bytes() == b"\x02" * 5 and (got.notes, got.gain) == (["these are MP3."], 0.5)
    wire["export"]["files"][0]["name"] = "../../escaped.wav"
    assert export_from_wire(wire, tmp_path / "bot2").files[0] == tmp_path / "bot2" / "escaped.wav"
