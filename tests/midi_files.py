"""MIDI files made in code for the tests (mido writes them; the parser under test reads them)."""

from __future__ import annotations

import io

import mido

TPQ = 480


def make_midi(
    tracks: dict[str, list[tuple[int, float, float, int]]],
    bpm: float = 90.0,
    ts=(4, 4),
    channels: dict[str, int] | None = None,
    key: str | None = None,
) -> bytes:
    """A type-1 MIDI file: {track name: [(pitch, start beat, length in beats, velocity)]}."""
    mf = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    meta = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
            mido.MetaMessage("time_signature", numerator=ts[0], denominator=ts[1]),
        ]
    )
    if key:
        meta.append(mido.MetaMessage("key_signature", key=key))
    mf.tracks.append(meta)
    for name, notes in tracks.items():
        ch = (channels or {}).get(name, len(mf.tracks) - 1)
        events = []
        for pitch, start, length, vel in notes:
            events.append(
                (round(start * TPQ), 1, mido.Message("note_on", note=pitch, velocity=vel, channel=ch))
            )
            events.append(
                (round((start + length) * TPQ), 0, mido.Message("note_off", note=pitch, channel=ch))
            )
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        now = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - now))
            now = tick
        mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()
