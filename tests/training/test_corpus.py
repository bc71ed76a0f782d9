"""Corpus ingestion: folders and zips (hostile ones included), skipping with reasons, the cache, the CLI."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from lofi.cli import main as lofi_main
from music.tokens import EOS, Representation
from tests.midi_files import make_midi as midi_file
from training.corpus import CorpusError, load_corpus, safe_member_name


def make_midi(notes: list[tuple[int, float, float]], name: str = "Melody", channel: int = 0) -> bytes:
    """A small MIDI file at 80 bpm with one named track of (pitch, start beat, beats) notes."""
    return midi_file(
        {name: [(p, start, beats, 80) for p, start, beats in notes]}, bpm=80, channels={name: channel}
    )


def tune(offset: int = 0) -> bytes:
    """A 16-note melody (distinct bytes for each `offset`)."""
    return make_midi([(60 + (i * 5 + offset) % 12, i * 0.5, 0.5) for i in range(16)])


DRUMS = make_midi([(36, i * 0.5, 0.25) for i in range(16)], name="Drums", channel=9)


def add_member(zf: zipfile.ZipFile, name: str, data: bytes, mode: int | None = None) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    zf.writestr(info, data)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_folder_is_searched_recursively_and_bad_files_are_reported(tmp_path, cache):
    root = tmp_path / "songs"
    (root / "a" / "b").mkdir(parents=True)
    (root / "one.mid").write_bytes(tune(1))
    (root / "a" / "b" / "two.MIDI").write_bytes(tune(2))
    (root / "a" / "renamed.mid").write_text("just some text, not music\n" * 3)
    (root / "a" / "cut.mid").write_bytes(tune(3)[:60])
    (root / "beat.mid").write_bytes(DRUMS)
    (root / "README.txt").write_text("ignored")
    result = load_corpus([root], cache_dir=cache, workers=1, progress=False)
    assert sorted(p.name for p in result.pieces) == ["a/b/two.MIDI", "one.mid"]
    assert all(p.source == "user" and p.ids[-1] == Representation().vocab.id(EOS) for p in result.pieces)
    reasons = dict(result.skipped)
    assert "not a MIDI file" in reasons["a/renamed.mid"]
    assert "truncated" in reasons["a/cut.mid"]
    assert reasons["beat.mid"] == "drum track only"
    assert result.files_read == 5


def test_second_run_is_served_from_the_cache(tmp_path, cache):
    root = tmp_path / "songs"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.mid").write_bytes(tune(i))
    (root / "bad.mid").write_bytes(b"MThd garbage")
    first = load_corpus([root], cache_dir=cache, workers=1, progress=False)
    second = load_corpus([root], cache_dir=cache, workers=1, progress=False)
    assert first.parsed == 4 and first.from_cache == 0
    assert second.parsed == 0 and second.from_cache == 3
    assert [p.ids for p in second.pieces] == [p.ids for p in first.pieces]
    assert second.skipped == first.skipped
    (root / "0.mid").write_bytes(tune(7))  # new content: parsed again
    assert load_corpus([root], cache_dir=cache, workers=1, progress=False).parsed == 1


def test_parallel_parse_matches_serial(tmp_path, cache):
    root = tmp_path / "songs"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mid").write_bytes(tune(i))
    par = load_corpus([root], cache_dir=tmp_path / "c2", workers=2, progress=False)
    ser = load_corpus([root], cache_dir=cache, workers=1, progress=False)
    assert [p.ids for p in par.pieces] == [p.ids for p in ser.pieces] and len(par.pieces) == 6


def test_hostile_zip_members_are_skipped_and_nothing_is_written_outside(tmp_path, cache):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        add_member(zf, "good/one.mid", tune(1))
        add_member(zf, "deep/er/two.mid", tune(2))
        add_member(zf, "../escape.mid", tune(3))
        add_member(zf, "/abs/path.mid", tune(4))
        add_member(zf, "C:/windows.mid", tune(5))
        add_member(zf, "link.mid", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)
        add_member(zf, "bomb.mid", b"MThd" + bytes(8 * 1024 * 1024))
        add_member(zf, "notes.mid", b"\x00\x01 corrupt")
        add_member(zf, "readme.txt", b"hello")
    before = set(tmp_path.parent.rglob("*"))
    result = load_corpus([archive], cache_dir=cache, workers=1, progress=False)
    assert sorted(p.name for p in result.pieces) == ["upload.zip/deep/er/two.mid", "upload.zip/good/one.mid"]
    reasons = dict(result.skipped)
    for name in ("../escape.mid", "/abs/path.mid", "C:/windows.mid"):
        assert "unsafe path" in reasons[f"upload.zip:{name}"]
    assert "symbolic link" in reasons["upload.zip:link.mid"]
    assert "zip bomb" in reasons["upload.zip:bomb.mid"]
    assert "not a MIDI file" in reasons["upload.zip/notes.mid"]
    written = set(tmp_path.parent.rglob("*")) - before
    assert all(cache in p.parents or p == cache for p in written)
    assert not (tmp_path.parent / "escape.mid").exists()


def test_a_corrupt_zip_is_reported_not_raised(tmp_path, cache):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    result = load_corpus([archive], cache_dir=cache, workers=1, progress=False)
    assert result.pieces == [] and "not a readable zip" in result.skipped[0][1]


def test_zip_with_pop909_sidecars_and_known_set_names(tmp_path, cache):
    archive = tmp_path / "sets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        add_member(zf, "pop909/001/001.mid", tune(1))
        add_member(zf, "pop909/001/key_audio.txt", b"0\t9\tD:maj\n")
    (piece,) = load_corpus([archive], cache_dir=cache, workers=1, progress=False).pieces
    assert piece.source == "pop909" and piece.tonic == 2 and piece.mode == "major"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_in_folders_are_not_followed(tmp_path, cache):
    outside = tmp_path / "secret.mid"
    outside.write_bytes(tune(1))
    root = tmp_path / "songs"
    root.mkdir()
    (root / "ok.mid").write_bytes(tune(2))
    (root / "link.mid").symlink_to(outside)
    result = load_corpus([root], cache_dir=cache, workers=1, progress=False)
    assert [p.name for p in result.pieces] == ["ok.mid"]
    assert "symbolic link" in dict(result.skipped)["link.mid"]


def test_missing_path_is_an_error(tmp_path, cache):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus([tmp_path / "nope"], cache_dir=cache, progress=False)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("a/b.mid", True),
        ("./a.mid", True),
        ("../a.mid", False),
        ("a/../../b.mid", False),
        ("/x.mid", False),
        ("\\\\server\\x.mid", False),
        ("D:\\x.mid", False),
        ("a\\..\\..\\x.mid", False),
    ],
)
def test_safe_member_names(name, safe):
    assert (safe_member_name(name) is not None) == safe


def test_cli_stats_and_check_print_json(tmp_path, cache, capsys):
    root = tmp_path / "songs"
    root.mkdir()
    for i in range(2):
        (root / f"{i}.mid").write_bytes(tune(i))
    (root / "beat.mid").write_bytes(DRUMS)
    args = [str(root), "--json", "--cache", str(cache), "--workers", "1", "--no-progress"]
    assert lofi_main(["corpus", "stats", *args]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pieces"] == 2 and stats["files_read"] == 3
    assert stats["skipped_by_reason"] == {"drum track only": 1}
    assert 0 < stats["vocab_used"] <= stats["vocab_size"] and stats["tokens_per_bar"] > 0
    assert lofi_main(["corpus", "check", *args]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["melody_share_exact"] == 1.0 and check["passed"]
