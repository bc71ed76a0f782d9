"""Custom radio stations on SQLite and PostgreSQL: a name is unique in its guild (the constraint, not only the
look-up before it, so a race cannot make two), another guild may use it, a guild has a bounded number, and
deleting a station retunes the saved radio that names it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from bot.radio.custom import CustomStations
from bot.radio.errors import RadioError
from bot.radio.recipes import Recipe
from db import radio as radio_repo

GUILD, OTHER = 1 << 40, 2 << 40
NIGHTS = Recipe("rainy", 100, "Eb major")


async def test_a_name_is_unique_in_its_guild_by_constraint(sessionmaker):
    async with sessionmaker.begin() as s:
        await radio_repo.add_custom_station(s, GUILD, "nights", mood="rainy", bpm=100, key="Eb major")
        await radio_repo.add_custom_station(s, OTHER, "nights", mood="sunny")  # another guild: fine
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as s:
            await radio_repo.add_custom_station(s, GUILD, "nights", mood="sunny")
    async with sessionmaker() as s:
        [row] = await radio_repo.custom_stations(s, GUILD)
        assert (row.name, row.mood, row.bpm, row.key) == ("nights", "rainy", 100, "Eb major")
        assert await radio_repo.count_custom_stations(s, OTHER) == 1


async def test_the_catalogue_creates_bounded_finds_resolves_and_deletes(sessionmaker):
    catalogue = CustomStations(sessionmaker, limit=2)
    made = await catalogue.create(GUILD, "  Late   NIGHT ", NIGHTS, created_by=7)
    assert made.name == "late night"
    with pytest.raises(RadioError, match="already has a station called"):
        await catalogue.create(GUILD, "late night", Recipe("sunny"))
    await catalogue.create(GUILD, "focus", Recipe("sunny"))
    with pytest.raises(RadioError, match="2 stations, the most"):
        await catalogue.create(GUILD, "third", Recipe("sunny"))
    assert (await catalogue.resolve(GUILD, "Late Night")).recipe == NIGHTS
    assert (await catalogue.resolve(GUILD, "custom:late night")).name == "late night"  # the saved form
    assert (await catalogue.resolve(GUILD, "rainy")).name is None
    with pytest.raises(RadioError, match="No mood or station"):
        await catalogue.resolve(OTHER, "late night")  # another guild's station is not this guild's
    assert (await catalogue.delete(GUILD, "LATE night")).recipe == NIGHTS
    assert [c.name for c in await catalogue.in_guild(GUILD)] == ["focus"]
    with pytest.raises(RadioError, match="no station called"):
        await catalogue.delete(GUILD, "late night")
