"""/lofi-retrain with a music attachment, end to end: the real bot against the fake Discord, which serves the
attachment's bytes on its CDN so the bot really downloads them; the real retrain runner in its own process
reads them by `lofi train`'s rules. Only the training itself is a stub (it reports the extra pieces it was
given), to keep these fast: tests/e2e/test_retrain_e2e.py trains for real.
"""

from __future__ import annotations

import io
import sys
import textwrap
import zipfile

import pytest

from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of
from tests.midi_files import make_midi

pytestmark = pytest.mark.timeout(120)

ADMIN_ID = 1_100_000_000_000_008_000
MEMBER_ID = 1_100_000_000_000_008_001

# The real runner (`python -m training.runner`) with `training.retrain.retrain` replaced: the attachment is
# read by the real code, and the stub's reason names the extra pieces training would have got.
STUB_TRAINING = [
    sys.executable,
    "-c",
    textwrap.dedent(
        """
        import sys
        import training.retrain as rt
        import training.runner as runner

        def retrain(models_dir, data_paths, extra_pieces=None, **kwargs):
            names = sorted(getattr(p, "name", "liked") for p in extra_pieces or [])
            return rt.RetrainResult(False, "stub trained on [" + ", ".join(names) + "]", None, {}, None)

        rt.retrain = retrain
        sys.exit(runner.main())
        """
    ),
]


def song(root: int) -> bytes:
    """A small but real lead sheet: 8 bars of melody over a bass."""
    melody = [(root + (0, 2, 4, 5, 7, 5, 4, 2)[i % 8], i * 0.5, 0.5, 80) for i in range(64)]
    bass = [(root - 24, bar * 4.0, 4.0, 70) for bar in range(8)]
    return make_midi({"melody": melody, "bass": bass})


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


async def start(start_bot, fake_pipeline, tmp_path, **overrides):
    return await start_bot(
        pipeline=fake_pipeline,
        retrain_command=STUB_TRAINING,
        admin_user_ids=[ADMIN_ID],
        cache_dir=tmp_path / "cache",
        **overrides,
    )


async def final_text(fake, state) -> str:
    done = await fake.wait_for(
        lambda r: (
            of(state, "original_edit")(r) and "Retrain #1" in text_of(r) and "running:" not in text_of(r)
        ),
        90,
    )
    return text_of(done)


async def last_run(bot):
    from db import repository as repo

    async with bot.sessionmaker() as s:
        return await repo.last_retrain(s)


async def test_an_attached_zip_is_downloaded_read_trained_on_and_reported(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    bot = await start(start_bot, fake_pipeline, tmp_path)
    stale = tmp_path / "cache" / "retrain" / "lofi-retrain-left-by-a-killed-bot" / "music"
    stale.mkdir(parents=True)
    (stale / "old.zip").write_bytes(b"an attachment downloaded before a crash")
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    music = fake_discord.attachment(
        "our songs.zip",
        zipped(
            {
                "set/song1.mid": song(60),
                "song2.mid": song(62),
                "song3.mid": b"not a midi file at all",
                "evil.zip": zipped({"x.mid": song(64)}),
            }
        ),
    )
    state = await fake_discord.send_interaction(
        "lofi-retrain", {"include_votes": False, "music": music}, user=admin
    )
    started = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert (
        started.ok
        and "Retrain #1 started" in text_of(started)
        and "music: `our songs.zip`" in text_of(started)
    )

    text = await final_text(fake_discord, state)
    assert text.startswith("↩️ Retrain #1: the current models stay"), text
    assert "stub trained on [our_songs.zip/set/song1.mid, our_songs.zip/song2.mid]" in text
    assert (
        "📥 read 2 pieces from your zip, skipped 2 (song3.mid: not a MIDI file (no MThd header); "
        "evil.zip: nested archive (not opened))"
    ) in text
    assert fake_discord.downloads == [music["id"]]
    run = await last_run(bot)
    assert run.params["upload"] == {
        "filename": "our songs.zip",
        "size": music["size"],
        "kind": "zip",
        "read": 2,
        "skipped": 2,
        "reasons": [
            ["song3.mid", "not a MIDI file (no MThd header)"],
            ["evil.zip", "nested archive (not opened)"],
        ],
    }
    assert list((tmp_path / "cache" / "retrain").iterdir()) == []  # this run's folder and the stale one
    fake_discord.assert_no_errors()


async def test_a_single_midi_file_is_read(fake_discord, start_bot, fake_pipeline, tmp_path):
    await start(start_bot, fake_pipeline, tmp_path)
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    music = fake_discord.attachment("tune.MID", song(57), content_type="audio/midi")
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=admin)
    text = await final_text(fake_discord, state)
    assert "stub trained on [tune.mid]" in text and text.endswith("📥 read 1 piece from your file"), text


def too_many_members() -> bytes:
    return zipped({f"m{i}.txt": b"" for i in range(20_001)}, zipfile.ZIP_STORED)


@pytest.mark.parametrize(
    ("filename", "make", "reason"),
    [
        (
            "bomb.zip",
            lambda: zipped({"ok.mid": song(60), "bomb.mid": bytes(4 * 2**20)}),
            "bomb.zip was refused: bomb.mid: compression ratio above 100 (possible zip bomb)",
        ),
        (
            "escape.zip",
            lambda: zipped({"ok.mid": song(60), "../../escape.mid": song(62)}),
            "escape.zip was refused: ../../escape.mid: unsafe path in archive",
        ),
        (
            "many.zip",
            too_many_members,
            "many.zip was refused: many.zip: archive has 20001 entries, more than the 20000 allowed",
        ),
        ("text.mid", lambda: b"just some text", "nothing usable in text.mid (text.mid: not a MIDI file"),
        (
            "broken.zip",
            lambda: b"PK\x03\x04 not really",
            "nothing usable in broken.zip (broken.zip: not a readable",
        ),
        (
            "empty.zip",
            lambda: zipped({"notes.txt": b"hi"}),
            "nothing usable in empty.zip (notes.txt: not music)",
        ),
    ],
)
async def test_a_hostile_or_useless_attachment_is_refused_with_its_reason(
    fake_discord, start_bot, fake_pipeline, tmp_path, filename, make, reason
):
    bot = await start(start_bot, fake_pipeline, tmp_path)
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    music = fake_discord.attachment(filename, make())
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=admin)
    text = await final_text(fake_discord, state)
    assert text.startswith("❌ Retrain #1 failed; serving is unchanged. " + reason), text
    assert "stub trained" not in text  # refused before any training
    run = await last_run(bot)
    assert run.status == "failed" and run.message.startswith(reason)
    assert list((tmp_path / "cache" / "retrain").iterdir()) == []
    fake_discord.assert_no_errors()


@pytest.mark.parametrize(
    ("guild_limit", "configured", "shown"),
    [(64 * 1024, 10 * 2**20, "over the 64 KiB"), (10 * 2**20, 32 * 1024, "over the 32 KiB")],
)
async def test_an_over_size_attachment_is_refused_before_download(
    fake_discord, start_bot, fake_pipeline, tmp_path, guild_limit, configured, shown
):
    bot = await start(start_bot, fake_pipeline, tmp_path, retrain_upload_max_bytes=configured)
    fake_discord.upload_limit = guild_limit  # what the interaction says this guild accepts
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    music = fake_discord.attachment("big.zip", zipped({"a.mid": song(60), "pad.bin": bytes(100_000)}, 0))
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=admin)
    reply = await ephemeral_reply(fake_discord, state)
    assert f"`big.zip` weighs {music['size'] / 1024:.0f} KiB, {shown} I accept here" in reply, reply
    assert "nothing was downloaded" in reply
    assert fake_discord.downloads == [] and await last_run(bot) is None
    fake_discord.assert_no_errors()


async def test_an_attachment_of_another_kind_is_refused_before_download(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    bot = await start(start_bot, fake_pipeline, tmp_path)
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    music = fake_discord.attachment("song.mp3", b"ID3 not music I read")
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=admin)
    reply = await ephemeral_reply(fake_discord, state)
    assert "`song.mp3` is not music I can train on" in reply, reply
    assert fake_discord.downloads == [] and await last_run(bot) is None


async def test_a_non_admin_with_an_attachment_is_refused_and_nothing_is_downloaded(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    bot = await start(start_bot, fake_pipeline, tmp_path)
    member = fake_discord.make_user(MEMBER_ID, "member")
    music = fake_discord.attachment("songs.zip", zipped({"a.mid": song(60)}))
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=member)
    assert "Only server managers" in await ephemeral_reply(fake_discord, state)
    assert fake_discord.downloads == [] and await last_run(bot) is None


async def test_a_download_longer_than_declared_is_cut_off_and_refused(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    bot = await start(start_bot, fake_pipeline, tmp_path)
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    data = zipped({"a.mid": song(60), "pad.bin": bytes(300_000)}, zipfile.ZIP_STORED)
    music = fake_discord.attachment("songs.zip", data, size=1000)  # passes the size check, then lies
    state = await fake_discord.send_interaction("lofi-retrain", {"music": music}, user=admin)
    text = await final_text(fake_discord, state)
    assert text.startswith(
        "❌ Retrain #1 failed; serving is unchanged. `songs.zip` is larger than Discord said"
    )
    assert fake_discord.downloads == [music["id"]] and "stub trained" not in text
    assert (await last_run(bot)).status == "failed"
    assert list((tmp_path / "cache" / "retrain").iterdir()) == []
