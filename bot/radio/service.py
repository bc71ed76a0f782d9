"""The radio service: broadcast stations, one per mood, composed and encoded once (`bot.radio.stations`), and
for each listening guild its voice connection playing a `Listener` tuned to one of them, its text-channel
messages and its state in the database (so that a 24/7 radio comes back after a restart or a dropped
connection). A guild's mood change tunes its listener to another station: at once when that station is on air.
A guild may also tune to one of its custom stations (`bot.radio.custom`); stations are keyed by their recipe
(`bot.radio.recipes`), so guilds with the same mood, tempo and key share one broadcast.

The service is given the track-making function (`compose(request, who) -> TrackInfo`, i.e. the `/lofi`
engine through the track service, so every piece is a recorded track whose votes count; it may render on
another machine, the service only decodes the MP3 it gets back), a decoder (`decode(mp3) -> PCM`) and where its
messages go (`announce`); it imports neither serving nor training.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.radio.custom import Custom, CustomStations
from bot.radio.errors import RadioError
from bot.radio.listener import Listener
from bot.radio.recipes import Recipe, Tuning
from bot.radio.station import RadioConfig, RadioStation
from bot.radio.stations import StationHub
from bot.radio.stream import SAMPLE_RATE, Piece
from bot.radio.voice_client import RadioVoiceClient
from bot.services import Requester, TrackInfo
from db import radio as radio_repo
from music.request import TrackRequest, plan_track

log = logging.getLogger(__name__)

VoiceChannel = discord.VoiceChannel | discord.StageChannel

Compose = Callable[[TrackRequest, Requester], Awaitable[TrackInfo]]
Decode = Callable[[Path], np.ndarray]
Announce = Callable[["LiveRadio", str, dict[str, Any]], Awaitable[None]]


@dataclass
class LiveRadio:
    """A guild's playing radio: the station it is tuned to, its listener (what its voice client plays), its
    voice client and where it talks."""

    guild_id: int
    voice_channel_id: int
    text_channel_id: int | None
    station: RadioStation
    always_on: bool = False
    started_by: int | None = None
    started_by_name: str | None = None
    vc: discord.VoiceClient | None = None
    message: discord.Message | None = None
    stop_at: datetime | None = None
    reconnects: int = 0
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stopping: bool = False
    listener: Listener = field(default_factory=Listener)
    shown: Piece | None = None  # the piece its now-playing message shows
    playing: bool = False  # connected, saved and playing: from then on the station's events concern it
    tuning: Tuning | None = None  # what the guild chose (None: the station's plain mood)
    # the player now playing its listener, and whether its thread has ended (see RadioService._start_player)
    player: object | None = None
    player_ended: bool = False

    @property
    def mood(self) -> str:
        return self.station.mood

    @property
    def label(self) -> str:
        """What its messages call its station: a custom station's name, or the mood."""
        return self.tuning.label if self.tuning is not None else self.station.mood

    @property
    def saved(self) -> str:
        """Its station as the guild's state records it (`Tuning.saved`)."""
        return self.tuning.saved if self.tuning is not None else self.station.mood


def _now() -> datetime:
    return datetime.now(UTC)


class RadioService:
    """Start, steer and stop the radios of every guild (see the module docstring)."""

    def __init__(
        self,
        client: discord.Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        compose: Compose,
        config: RadioConfig,
        *,
        decode: Decode | None = None,
        executor: Executor | None = None,
        announce: Announce | None = None,
        connector: Callable[[VoiceChannel], Awaitable[discord.VoiceClient]] | None = None,
    ):
        from bot.radio.audio import load_pcm

        self.client = client
        self.sessionmaker = sessionmaker
        self.compose = compose
        self.config = config
        self.decode = decode or load_pcm
        self.executor = executor
        self.announce = announce
        self.connector = connector
        self.radios: dict[int, LiveRadio] = {}
        self.hub = StationHub(self._new_station)
        self.custom = CustomStations(sessionmaker)
        self._locks: dict[int, asyncio.Lock] = {}
        self._closing = False

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._locks.setdefault(guild_id, asyncio.Lock())

    def get(self, guild_id: int | None) -> LiveRadio | None:
        """The guild's playing radio, if any."""
        return self.radios.get(guild_id) if guild_id is not None else None

    # ------------------------------------------------------------------ pieces

    def _new_station(self, key: str) -> RadioStation:
        """The station of the recipe whose key is `key`; its pieces are tracks recorded as the radio's (no guild:
        every guild tuned to the recipe hears them)."""
        loop = asyncio.get_running_loop()
        recipe = Recipe.of_station_key(key)
        bpm = float(recipe.bpm) if recipe.bpm is not None else None

        async def make(mood: str, seed: int) -> Piece:
            length = self.config.piece_length_s
            # a radio piece (no intro, outro, fades or ringing chord) lasts whole bars: the stream crossfades
            # over whole bars of it, so the next piece's downbeats fall on its downbeats
            request = TrackRequest(length_s=length, mood=mood, seed=seed, bpm=bpm, key=recipe.key, radio=True)
            me = self.client.user
            who = Requester(me.id if me is not None else 0, f"lofi radio ({recipe.describe()})")
            info = await self.compose(request, who)
            pcm = await loop.run_in_executor(self.executor, self.decode, info.mp3)
            bar_s = pcm.shape[0] / SAMPLE_RATE / plan_track(request).n_bars
            return Piece(pcm, mood=info.mood, seed=info.seed, track=info, bar_s=bar_s)

        station = RadioStation(make, recipe.mood, self.config, key=key)
        station.on_event = lambda kind, data: self._on_station_event(station, kind, data)
        return station

    def on_air(self, station: Tuning | str) -> bool:
        """Whether the station (a tuning, or a station key such as a mood) is broadcasting (so tuning to it is
        immediate)."""
        return self.hub.on_air(station.recipe.station_key if isinstance(station, Tuning) else station)

    async def resolve(self, guild_id: int, choice: Tuning | str) -> Tuning:
        """A station choice (a mood or the guild's custom station's name) as a tuning; RadioError if neither."""
        return choice if isinstance(choice, Tuning) else await self.custom.resolve(guild_id, choice)

    # ------------------------------------------------------------------ control

    async def start(
        self,
        guild: discord.Guild,
        voice_channel: VoiceChannel,
        text_channel_id: int | None,
        choice: Tuning | str,
        *,
        user_id: int | None = None,
        user_name: str | None = None,
        always_on: bool | None = None,
        stop_at: datetime | None = None,
        resumed: bool = False,
    ) -> LiveRadio:
        """Tune in to the chosen station (a mood or a custom station; composing its first piece if it was off
        the air), join `voice_channel` and play; the state is saved as active."""
        async with self._lock(guild.id):
            if guild.id in self.radios:
                raise RadioError("The radio is already playing here; use `/lofi-radio mood` or `stop`.")
            tuning = await self.resolve(guild.id, choice)
            async with self.sessionmaker() as s:
                saved = await radio_repo.get_station(s, guild.id)
            if always_on is None:
                always_on = bool(saved and saved.always_on)
            # the station first (seconds when off the air), then connect: a voice connection idle meanwhile
            # gains nothing
            station = await self.hub.tune_in(tuning.recipe.station_key, guild.id)
            radio = LiveRadio(
                guild.id,
                voice_channel.id,
                text_channel_id,
                station,
                always_on=always_on,
                started_by=user_id,
                started_by_name=user_name,
                stop_at=stop_at,
                tuning=tuning,
            )
            radio.listener.tune(station.broadcast)
            self.radios[guild.id] = radio
            await self._connect_or_leave(radio, voice_channel)
            await self._save(
                radio,
                active=True,
                mood=tuning.saved,
                voice_channel_id=voice_channel.id,
                text_channel_id=text_channel_id,
                always_on=always_on,
                started_by=user_id,
                started_by_name=user_name,
                stop_at=stop_at,
            )
            self._play(radio, stop_at)
            log.info(
                "radio started in guild %s, channel %s, station %s (resumed=%s)",
                guild.id,
                voice_channel.id,
                tuning.saved,
                resumed,
            )
            return radio

    async def _connect_or_leave(self, radio: LiveRadio, voice_channel: VoiceChannel) -> None:
        """Connect; on any failure the radio is forgotten, its station left and the connection dropped."""
        try:
            radio.vc = await self._connect(voice_channel)
        except BaseException:
            self.radios.pop(radio.guild_id, None)
            await self.hub.leave(radio.station.key, radio.guild_id)
            if radio.vc is not None:
                with contextlib.suppress(Exception):
                    await radio.vc.disconnect(force=True)
            raise

    def _play(self, radio: LiveRadio, stop_at: datetime | None) -> None:
        """Start the listener, its watchdog and the sleep timer, and show what the station plays."""
        assert radio.vc is not None
        radio.playing = True
        self._start_player(radio)
        radio.tasks["watchdog"] = asyncio.create_task(
            self._watchdog(radio), name=f"radio-watch-{radio.guild_id}"
        )
        if stop_at is not None:
            self._schedule_sleep(radio, stop_at)
        self._show_soon(radio)

    async def _connect(self, channel: VoiceChannel) -> discord.VoiceClient:
        if self.connector is not None:
            return await self.connector(channel)
        existing = channel.guild.voice_client
        if existing is not None:  # a leftover from a dropped session: start clean
            with contextlib.suppress(Exception):
                await existing.disconnect(force=True)
        return await channel.connect(
            timeout=self.config.connect_timeout_s, reconnect=True, self_deaf=True, cls=RadioVoiceClient
        )

    async def set_mood(self, guild_id: int, choice: Tuning | str) -> bool:
        """Tune the guild to the chosen station (a mood or a custom station): at once if it is on air (True),
        else once its first piece is composed (False); the station left behind goes off the air if nobody else
        listens."""
        async with self._lock(guild_id):
            radio = self._require(guild_id)
            tuning = await self.resolve(guild_id, choice)
            old = radio.station
            key = tuning.recipe.station_key
            if (
                old.key == key
            ):  # another name for the same recipe (or a deleted station's mood): same broadcast
                radio.tuning = tuning
                await self._save(radio, mood=tuning.saved)
                return True
            was_on_air = self.hub.on_air(key)
            station = await self.hub.tune_in(key, guild_id)
            radio.station, radio.tuning = station, tuning
            radio.listener.tune(station.broadcast)
            await self.hub.leave(old.key, guild_id)
        await self._save(radio, mood=tuning.saved)
        self._show_soon(radio)
        return was_on_air

    async def stop(self, guild_id: int, reason: str = "stopped", *, keep_active: bool = False) -> bool:
        """Stop the radio and leave voice; `keep_active` keeps it marked active (a restart brings it back)."""
        async with self._lock(guild_id):
            radio = self.radios.pop(guild_id, None)
            if radio is None:
                return False
            radio.stopping = True
            current = asyncio.current_task()
            for task in radio.tasks.values():
                if task is not current:
                    task.cancel()
            if radio.vc is not None:
                with contextlib.suppress(Exception):
                    await radio.vc.disconnect(force=True)
            radio.listener.tune(None)
            await self.hub.leave(radio.station.key, guild_id)
        if not keep_active:
            async with self.sessionmaker.begin() as s:
                await radio_repo.deactivate(s, guild_id)
        await self._announce(radio, "stopped", {"reason": reason})
        log.info("radio stopped in guild %s: %s", guild_id, reason)
        return True

    async def sleep(self, guild_id: int, seconds: float) -> datetime:
        """Stop the radio `seconds` from now; returns when."""
        radio = self._require(guild_id)
        at = _now() + timedelta(seconds=seconds)
        radio.stop_at = at
        self._schedule_sleep(radio, at)
        await self._save(radio, stop_at=at)
        return at

    async def set_always_on(self, guild_id: int, on: bool) -> None:
        """24/7 mode: reconnect after restarts and dropped connections, stay in an empty channel."""
        radio = self.radios.get(guild_id)
        if radio is not None:
            radio.always_on = on
            if on:
                self._cancel(radio, "empty")
        async with self.sessionmaker.begin() as s:
            row = await radio_repo.get_station(s, guild_id)
            if row is None and radio is None:
                raise RadioError("Start the radio first (`/lofi-radio start`), then turn 24/7 on.")
            await radio_repo.save_station(
                s,
                guild_id,
                always_on=on,
                **(
                    {}
                    if row is not None or radio is None
                    else {"voice_channel_id": radio.voice_channel_id, "mood": radio.saved, "active": True}
                ),
            )

    async def resume_saved(self) -> list[int]:
        """Start again every radio the database says was playing (after a restart); returns their guilds."""
        async with self.sessionmaker() as s:
            rows = [
                (
                    r.guild_id,
                    r.voice_channel_id,
                    r.text_channel_id,
                    r.mood,
                    r.always_on,
                    r.stop_at,
                    r.started_by,
                    r.started_by_name,
                )
                for r in await radio_repo.active_stations(s)
            ]
        resumed = []
        for guild_id, vc_id, text_id, saved, always_on, stop_at, by, by_name in rows:
            if guild_id in self.radios:
                continue
            guild = self.client.get_guild(guild_id)
            channel = guild.get_channel(vc_id) if guild is not None else None
            if (
                guild is None
                or not isinstance(channel, VoiceChannel)
                or (stop_at is not None and stop_at <= _now())
            ):
                async with self.sessionmaker.begin() as s:
                    await radio_repo.deactivate(s, guild_id)
                continue
            try:
                radio = await self.start(
                    guild,
                    channel,
                    text_id,
                    await self._saved_tuning(guild_id, saved),
                    user_id=by,
                    user_name=by_name,
                    always_on=always_on,
                    stop_at=stop_at,
                    resumed=True,
                )
            except Exception:
                log.exception("could not resume the radio of guild %s", guild_id)
                continue
            await self._announce(radio, "resumed", {})
            resumed.append(guild_id)
        return resumed

    async def _saved_tuning(self, guild_id: int, saved: str) -> Tuning:
        """The station a guild's saved state names; chill if it names one that is gone (deleting a station
        retunes its guild, so only a database edited by hand gets here)."""
        try:
            return await self.resolve(guild_id, saved)
        except RadioError:
            log.warning("guild %s was tuned to %r, which is gone; resuming on chill", guild_id, saved)
            return Tuning.of_mood("chill")

    async def delete_station(self, guild_id: int, name: str) -> tuple[Custom, bool]:
        """Delete the guild's custom station `name`; a radio tuned to it moves to the station's mood (its saved
        state too, for a radio that is off). Returns the station and whether a playing radio moved."""
        async with self._lock(guild_id):  # a `start` tuning to it meanwhile finishes first, then is moved
            gone = await self.custom.delete(guild_id, name)
            fallback = Tuning.of_mood(gone.recipe.mood)
            async with self.sessionmaker.begin() as s:
                row = await radio_repo.get_station(s, guild_id)
                if row is not None and row.mood == gone.tuning.saved:
                    row.mood = fallback.saved
            radio = self.radios.get(guild_id)
        if radio is None or radio.tuning != gone.tuning:
            return gone, False
        await self.set_mood(guild_id, fallback)
        return gone, True

    async def shutdown(self) -> None:
        """Stop every radio for a bot shutdown; they stay marked active and come back on the next start."""
        self._closing = True
        for guild_id in list(self.radios):
            with contextlib.suppress(Exception):
                await self.stop(guild_id, "the bot is restarting", keep_active=True)
        await self.hub.close()

    # ------------------------------------------------------------------ voice channel events

    def channel_changed(self, guild_id: int) -> None:
        """Someone joined or left: without 24/7, an empty channel stops the radio after a grace period."""
        radio = self.radios.get(guild_id)
        if radio is None or radio.always_on or radio.vc is None:
            return
        channel = radio.vc.channel
        listeners = [m for m in getattr(channel, "members", []) if not m.bot]
        if listeners:
            self._cancel(radio, "empty")
        elif "empty" not in radio.tasks or radio.tasks["empty"].done():

            async def later() -> None:
                await asyncio.sleep(self.config.empty_grace_s)
                await self.stop(guild_id, "everyone left the channel")

            radio.tasks["empty"] = asyncio.create_task(later(), name=f"radio-empty-{guild_id}")

    # ------------------------------------------------------------------ internals

    def _require(self, guild_id: int | None) -> LiveRadio:
        radio = self.get(guild_id)
        if radio is None:
            raise RadioError("The radio is not playing here; start it with `/lofi-radio start`.")
        return radio

    def _cancel(self, radio: LiveRadio, name: str) -> None:
        task = radio.tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _schedule_sleep(self, radio: LiveRadio, at: datetime) -> None:
        self._cancel(radio, "sleep")

        async def later() -> None:
            await asyncio.sleep(max(0.0, (at - _now()).total_seconds()))
            await self.stop(radio.guild_id, "sleep timer")

        radio.tasks["sleep"] = asyncio.create_task(later(), name=f"radio-sleep-{radio.guild_id}")

    async def _save(self, radio: LiveRadio, **values: Any) -> None:
        try:
            async with self.sessionmaker.begin() as s:
                await radio_repo.save_station(s, radio.guild_id, **values)
        except Exception:
            log.exception("could not save the radio state of guild %s", radio.guild_id)

    def _start_player(self, radio: LiveRadio) -> None:
        """Play the radio's listener on its voice client; the watchdog starts it again if it ends.

        discord.py's player can end without saying so: when the voice connection drops while it is sending, it
        waits to be reconnected, but the disconnect wakes it early, it sees no connection and its thread returns
        ("Aborting playback") with `is_playing()` still true. Only its `after` callback tells, so each player
        gets its own token, and an `after` of a player since replaced changes nothing.
        """
        assert radio.vc is not None
        player = radio.player = object()
        radio.player_ended = False

        def after(error: Exception | None) -> None:  # on the player's thread
            if error is not None:
                log.error("radio player of guild %s stopped", radio.guild_id, exc_info=error)
            if radio.player is player:
                radio.player_ended = True

        if radio.vc.is_playing() or radio.vc.is_paused():
            radio.vc.stop()  # a player that ended unseen still counts as playing, and play() would refuse
        radio.vc.play(radio.listener, after=after)

    async def _watchdog(self, radio: LiveRadio) -> None:
        """Restart the player if it stopped; after a lost connection that discord.py gave up on, reconnect
        (24/7) or stop."""
        while not radio.stopping:
            await asyncio.sleep(0.5)
            vc = radio.vc
            if vc is None or radio.stopping or self._closing or self.client.is_closed():
                continue
            guild = self.client.get_guild(radio.guild_id)
            gone = guild is None or guild.voice_client is not vc
            if not gone:
                if vc.is_connected() and (radio.player_ended or not (vc.is_playing() or vc.is_paused())):
                    log.warning("radio player of guild %s had stopped; restarting it", radio.guild_id)
                    self._start_player(radio)
                continue
            # discord.py let go of the connection (kicked, channel gone, reconnects exhausted)
            if not radio.always_on:
                await self.stop(radio.guild_id, "the voice connection was closed")
                return
            await self._reconnect(radio, guild)

    async def _reconnect(self, radio: LiveRadio, guild: discord.Guild | None) -> None:
        delay = 1.0
        while not radio.stopping:
            channel = guild.get_channel(radio.voice_channel_id) if guild is not None else None
            if not isinstance(channel, VoiceChannel):
                await self.stop(radio.guild_id, "the voice channel is gone")
                return
            try:
                radio.vc = await self._connect(channel)
                self._start_player(radio)
            except Exception as exc:
                log.warning(
                    "radio reconnect in guild %s failed (%s); again in %.0f s", radio.guild_id, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            radio.reconnects += 1
            log.info("radio of guild %s reconnected (%d)", radio.guild_id, radio.reconnects)
            await self._announce(radio, "reconnected", {})
            return

    async def _on_station_event(self, station: RadioStation, kind: str, data: dict[str, Any]) -> None:
        """A station's event, told to every guild tuned to it (each has its own now-playing message)."""
        radios = [self.radios.get(g) for g in sorted(self.hub.listeners(station))]
        # a guild still connecting is told by `_play` (its state row is not saved yet)
        tuned = [r for r in radios if r is not None and r.playing and r.station is station]
        # concurrently: one slow guild's channel must not delay the others' messages
        if kind == "now_playing":
            await asyncio.gather(*(self._show(r, data["piece"]) for r in tuned))
        else:
            await asyncio.gather(*(self._announce(r, kind, data) for r in tuned))

    def _show_soon(self, radio: LiveRadio) -> None:
        """Show the station's current piece (a guild that just tuned in missed its start)."""
        piece = radio.station.now_playing
        if piece is not None and piece is not radio.shown:
            radio.tasks["show"] = asyncio.create_task(
                self._show(radio, piece), name=f"radio-show-{radio.guild_id}"
            )

    async def _show(self, radio: LiveRadio, piece: Piece) -> None:
        """The guild's now-playing message shows `piece` and its state records it (once per piece)."""
        if radio.shown is piece or radio.stopping:
            return
        radio.shown = piece  # before any await: a concurrent call for the same piece returns above
        track_id = piece.track.track_id if piece.track is not None else None
        await self._save(radio, now_playing_track_id=track_id)
        await self._announce(radio, "now_playing", {"piece": piece})

    async def _announce(self, radio: LiveRadio, kind: str, data: dict[str, Any]) -> None:
        if self.announce is None:
            return
        try:
            await self.announce(radio, kind, data)
        except Exception:
            log.exception("radio announcement %s failed in guild %s", kind, radio.guild_id)
