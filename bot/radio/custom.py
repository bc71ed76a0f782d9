"""The guilds' custom stations in the database: create (a bounded number per guild), delete, list, and what a
typed station choice (a mood or a station's name) resolves to. Errors are `RadioError`s, shown to the user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.radio.errors import RadioError
from bot.radio.recipes import CUSTOM_PREFIX, BadStationName, Recipe, Tuning, station_name
from db import radio as radio_repo
from music.request import mood_names

MAX_PER_GUILD = 10  # enough for a server's moods of the day; each adds a line to every station autocomplete
CHOICES_MAX = 25  # Discord's bound on an autocomplete answer


@dataclass(frozen=True)
class Custom:
    """One guild's custom station: its name and recipe."""

    name: str
    recipe: Recipe

    @property
    def tuning(self) -> Tuning:
        return Tuning(self.recipe, self.name)


class CustomStations:
    """The custom stations of every guild, stored through `sessionmaker`."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], limit: int = MAX_PER_GUILD):
        self.sessionmaker = sessionmaker
        self.limit = limit

    async def create(self, guild_id: int, name: str, recipe: Recipe, created_by: int | None = None) -> Custom:
        """Store a new station; RadioError for a bad or taken name or a guild already at its limit."""
        try:
            name = station_name(name)
        except BadStationName as exc:
            raise RadioError(f"Bad station name: {exc}.") from None
        try:
            async with self.sessionmaker.begin() as s:
                if await radio_repo.custom_station(s, guild_id, name) is not None:
                    raise RadioError(f"This server already has a station called **{name}**.")
                if await radio_repo.count_custom_stations(s, guild_id) >= self.limit:
                    raise RadioError(
                        f"This server has {self.limit} stations, the most it may have; delete one first."
                    )
                await radio_repo.add_custom_station(
                    s, guild_id, name, mood=recipe.mood, bpm=recipe.bpm, key=recipe.key, created_by=created_by
                )
        except IntegrityError:  # created by a concurrent command between the look-up and the insert
            raise RadioError(f"This server already has a station called **{name}**.") from None
        return Custom(name, recipe)

    async def delete(self, guild_id: int, name: str) -> Custom:
        """Delete the guild's station `name`; RadioError if it has none of that name."""
        key = " ".join(name.split()).lower()
        async with self.sessionmaker.begin() as s:
            row = await radio_repo.delete_custom_station(s, guild_id, key)
            if row is None:
                raise RadioError(f"This server has no station called **{key}**.")
            return Custom(row.name, Recipe(row.mood, row.bpm, row.key))

    async def in_guild(self, guild_id: int) -> list[Custom]:
        """The guild's stations, by name."""
        async with self.sessionmaker() as s:
            rows = await radio_repo.custom_stations(s, guild_id)
            return [Custom(r.name, Recipe(r.mood, r.bpm, r.key)) for r in rows]

    async def find(self, guild_id: int, name: str) -> Custom | None:
        """The guild's station `name` (however spaced or cased), if any."""
        async with self.sessionmaker() as s:
            row = await radio_repo.custom_station(s, guild_id, " ".join(name.split()).lower())
            return Custom(row.name, Recipe(row.mood, row.bpm, row.key)) if row is not None else None

    async def resolve(self, guild_id: int, choice: str) -> Tuning:
        """What `choice` (a mood, a station's name, or a saved "custom:<name>") tunes to; RadioError if
        neither."""
        text = choice.strip()
        if text in mood_names():
            return Tuning.of_mood(text)
        found = await self.find(guild_id, text.removeprefix(CUSTOM_PREFIX))
        if found is None:
            raise RadioError(
                f"No mood or station called **{text[:40]}** here; pick one from the list "
                f"(moods: {', '.join(mood_names())})."
            )
        return found.tuning

    async def choices(self, guild_id: int | None, typed: str) -> list[tuple[str, str]]:
        """(label, value) for a station autocomplete: the moods, then the guild's stations, those containing
        what was typed first; at most 25."""
        customs = await self.in_guild(guild_id) if guild_id is not None else []
        offered = [(m, m) for m in mood_names()]
        offered += [(f"{c.name} ({c.recipe.describe()})", c.name) for c in customs]
        typed = " ".join(typed.split()).lower()
        matching = [o for o in offered if typed in o[0].lower()]
        return (matching or offered)[:CHOICES_MAX]
