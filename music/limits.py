"""Numbers more than one layer needs, defined once."""

SEED_MAX = 2**31 - 1  # seeds are 0..SEED_MAX (a signed 32-bit int: Discord's integer options and SQLite)
MIN_BPM, MAX_BPM = 40, 200  # the tempo a request may ask for (music.request.TrackRequest checks it)
DRUM_CHANNEL = 9  # General MIDI percussion, 0-based as in MIDI bytes and mido (music21 numbers it 10)
QUOTE_MAX = 40  # characters of user input an error message repeats (Discord refuses content over 2,000)
MIN_LENGTH_S, MAX_LENGTH_S = 15.0, 600.0  # track lengths the bot and the CLI accept unless widened
# The longest track any request may ask for, whatever widens the limits above: planning, composing and the
# audio in memory (~1.3 GB of float samples an hour) all grow with it. `lofi generate --length 99999h` grew
# to 4.4 GB planning 120 million bars before this bound.
LONGEST_TRACK_S = 3600.0


def quoted(value: object, limit: int = QUOTE_MAX) -> str:
    """`repr(value)` cut to `limit` characters with an ellipsis: user input is never repeated at full length."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    if len(text) <= limit:
        return text
    return text[: max(limit - 2, 1)] + "…" + text[0]
