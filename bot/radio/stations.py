"""The stations on air, one per mood: started when the first guild tunes in, stopped (composer, broadcast thread
and buffers freed) when the last one leaves, so an idle mood costs nothing and a busy one costs the same for one
guild as for a thousand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.radio.station import RadioStation

log = logging.getLogger(__name__)


class StationHub:
    """Stations by key (a mood) and the guilds tuned to each.

    Args:
        make_station: a new, not yet started station for a key.
    """

    def __init__(self, make_station: Callable[[str], RadioStation]):
        self.make_station = make_station
        self.stations: dict[str, RadioStation] = {}
        self.tuned: dict[str, set[int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def on_air(self, key: str) -> bool:
        """Whether `key`'s station is broadcasting (tuning to it is immediate)."""
        station = self.stations.get(key)
        return station is not None and station.broadcast.on_air

    def listeners(self, station: RadioStation) -> set[int]:
        """The guilds tuned to `station`."""
        for key, s in self.stations.items():
            if s is station:
                return set(self.tuned.get(key, ()))
        return set()

    async def tune_in(self, key: str, guild_id: int) -> RadioStation:
        """`guild_id` listens to `key`'s station, started (first piece composed) if it was off the air."""
        async with self._lock(key):
            station = self.stations.get(key)
            if station is None:
                station = self.make_station(key)
                try:
                    await station.start(wait_first=True)
                except BaseException:
                    await station.stop()
                    raise
                self.stations[key] = station
                log.info("radio station %s on air", key)
            self.tuned.setdefault(key, set()).add(guild_id)
            return station

    async def leave(self, key: str, guild_id: int) -> None:
        """`guild_id` no longer listens to `key`; the last listener out turns the station off."""
        async with self._lock(key):
            tuned = self.tuned.get(key, set())
            tuned.discard(guild_id)
            if tuned:
                return
            self.tuned.pop(key, None)
            station = self.stations.pop(key, None)
        if station is not None:
            await station.stop()
            log.info("radio station %s off the air (no listeners)", key)

    async def close(self) -> None:
        """Turn every station off (bot shutdown)."""
        stations, self.stations, self.tuned = list(self.stations.values()), {}, {}
        for station in stations:
            await station.stop()
