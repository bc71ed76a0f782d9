"""A strict fake Discord on loopback: the HTTP API (v10) and the gateway, for the real discord.py client.

Every JSON body the client sends (and every multipart ``payload_json``) is validated against Discord's
official OpenAPI spec (``tests/fixtures/discord/openapi.json``); an invalid body gets Discord's own
``50035 Invalid Form Body`` answer. Interaction tokens follow Discord's rules: one callback, within the
acknowledgement deadline (3 s), before any follow-up or edit of ``@original``. Uploads over the
per-attachment limit (10 MiB) get ``413 / 40005``; bot routes need ``Authorization: Bot <token>``.

Tests drive it with ``send_interaction``, ``send_component``, ``add_reaction``/``remove_reaction`` and read
what the bot did with ``wait_for`` (``Recorded`` entries: route kind, JSON payload, uploaded files).

Sharding follows Discord's gateway docs: ``/gateway/bot`` recommends ``shards`` (1 by default); with more
than one, every IDENTIFY must carry ``shard: [shard_id, num_shards]`` (none, or fewer shards than required:
close 4011 "Sharding required"; a malformed pair or ``shard_id >= num_shards``: 4010 "Invalid shard"). A
session gets READY with its ``shard`` and only its guilds, ``(guild_id >> 22) % num_shards == shard_id``, and
every event of a guild goes out on that guild's session. More guilds come from ``add_guild``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "discord" / "openapi.json"
SPEC_URI = "urn:discord:openapi"
API_PREFIX = "/api/v10"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's default per-attachment limit
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ALL_PERMISSIONS = str((1 << 51) - 1)
# add reactions, view channel, send messages, embed links, attach files, read history, connect, speak,
# use app commands (Discord's default @everyone has connect and speak too)
MEMBER_PERMISSIONS = str(
    (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 20) | (1 << 21) | (1 << 31)
)

# Gateway opcodes.
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11
INTENT_GUILDS = 1 << 0
INTENT_GUILD_VOICE_STATES = 1 << 7
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011

# Interaction contexts and installation types (Discord's user-installable apps).
CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2
GUILD_INSTALL, USER_INSTALL = "0", "1"
USER_APP_FOLLOWUPS = (
    5  # follow-ups per interaction for an app only user-installed there (2024-06-27 changelog)
)
# What Discord resolves for an app that is only user-installed where it is used: the user-facing basics
# (view channel, send messages, embed links, attach files, read history, use app commands), no reactions.
USER_APP_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31))

# Application command option types (Discord docs), for typing test-supplied option values.
OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP = 1, 2
OPTION_ATTACHMENT = 11
CDN_PREFIX = "/cdn/attachments"  # where the fake serves what a user attached (Discord: cdn.discordapp.com)


# ---------------------------------------------------------------------------------------------- the spec


def _patch_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Apply the few places where Discord's documented behaviour is wider than the preview spec.

    - Snowflakes: the API accepts integers as well as strings on input (discord.py sends attachment ids
      as integer indexes ``{"id": 0, "filename": ...}``, the documented way to reference ``files[0]``).
    - Permission bit sets are documented as strings (``default_member_permissions: ?string``); the spec
      says integer. Both are accepted by Discord; discord.py sends the string form.
    """
    schemas = spec["components"]["schemas"]
    schemas["SnowflakeType"] = {
        "anyOf": [
            {"type": "string", "pattern": r"^(0|[1-9][0-9]*)$"},
            {"type": "integer", "minimum": 0},
        ]
    }

    def widen_permissions(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for name in ("default_member_permissions", "permissions"):
                    prop = props.get(name)
                    if isinstance(prop, dict) and "integer" in _types(prop):
                        nullable = "null" in _types(prop)
                        props[name] = {
                            "anyOf": [
                                {"type": ["integer", "null"] if nullable else "integer", "minimum": 0},
                                {"type": "string", "pattern": r"^[0-9]+$"},
                            ]
                        }
            for value in node.values():
                widen_permissions(value)
        elif isinstance(node, list):
            for value in node:
                widen_permissions(value)

    widen_permissions(schemas)
    return spec


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


@lru_cache(maxsize=1)
def load_spec() -> tuple[dict[str, Any], Registry]:
    """Load and patch the spec once per process; the registry resolves ``#/components/...`` refs."""
    spec = _patch_spec(json.loads(SPEC_PATH.read_text()))
    registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
    return spec, registry


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@lru_cache(maxsize=256)
def request_validator(template: str, method: str) -> Draft202012Validator | None:
    """A cached validator for the JSON request body of ``method template``; None when it takes no body."""
    spec, registry = load_spec()
    operation = spec["paths"][template][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    pointer = "/".join(
        _pointer_escape(p)
        for p in ("paths", template, method.lower(), "requestBody", "content", "application/json", "schema")
    )
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry)


@lru_cache(maxsize=256)
def response_validator(template: str, method: str, status: int) -> Draft202012Validator | None:
    """A cached validator for the spec's JSON response to ``method template`` with ``status``."""
    spec, registry = load_spec()
    responses = spec["paths"][template][method.lower()].get("responses", {})
    if "application/json" not in responses.get(str(status), {}).get("content", {}):
        return None
    pointer = "/".join(
        _pointer_escape(p)
        for p in (
            "paths",
            template,
            method.lower(),
            "responses",
            str(status),
            "content",
            "application/json",
            "schema",
        )
    )
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry)


def response_problem(rec: Recorded) -> str | None:
    """Why the fake's own answer in ``rec`` does not match the spec (a self-check), or None."""
    if rec.template is None or rec.status >= 400:
        return None
    validator = response_validator(rec.template, rec.method, rec.status)
    if validator is None:
        return None
    errors = list(validator.iter_errors(rec.response))
    if not errors:
        return None
    error = _deepest(errors)
    return f"{rec.method} {rec.template}: {list(error.absolute_path)}: {error.message[:200]}"


def operation_security(template: str, method: str) -> list[dict[str, Any]]:
    spec, _ = load_spec()
    return spec["paths"][template][method.lower()].get("security", [])


_ERROR_CODES = {
    "maxLength": ("BASE_TYPE_MAX_LENGTH", "Must be {v} or fewer in length."),
    "minLength": ("BASE_TYPE_MIN_LENGTH", "Must be {v} or more in length."),
    "maxItems": ("BASE_TYPE_MAX_LENGTH", "Must be {v} or fewer in length."),
    "minItems": ("BASE_TYPE_MIN_LENGTH", "Must be {v} or more in length."),
    "required": ("BASE_TYPE_REQUIRED", "This field is required"),
    "enum": ("BASE_TYPE_CHOICES", "Value must be one of {v}."),
    "const": ("BASE_TYPE_CHOICES", "Value must be one of ({v},)."),
    "type": ("BASE_TYPE_BAD_TYPE", "Value is not a valid {v}."),
    "maximum": ("NUMBER_TYPE_MAX", "int value should be less than or equal to {v}."),
    "minimum": ("NUMBER_TYPE_MIN", "int value should be greater than or equal to {v}."),
}


def discord_form_errors(error: ValidationError) -> dict[str, Any]:
    """Turn one jsonschema error into Discord's nested ``errors`` object (``{"a": {"0": {"_errors": []}}}``)."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        path.append(missing[0] if missing else "")
    code, template = _ERROR_CODES.get(str(error.validator), ("BASE_TYPE_INVALID", "{m}"))
    message = template.format(v=error.validator_value, m=error.message)
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message, "detail": error.message[:300]}]}
    for part in reversed(path):
        node = {part: node}
    return node


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    out = []
    for e in errors:
        out.extend(_leaves(list(e.context)) if e.context else [e])
    return out


def _deepest(errors: list[ValidationError]) -> ValidationError:
    """The most specific cause: anyOf/oneOf branches are searched and the deepest failing value wins."""
    leaves = _leaves(errors) or errors
    # Prefer errors about a value's content over "this branch's discriminator did not match".
    return max(leaves, key=lambda e: (len(e.absolute_path), e.validator not in ("const", "type", "enum")))


def validate_body(template: str, method: str, body: Any) -> dict[str, Any] | None:
    """Discord's 400 answer for an invalid body, or None when the body conforms to the spec."""
    validator = request_validator(template, method)
    if validator is None:
        return None
    errors = list(validator.iter_errors(body))
    if not errors:
        return None
    error = _deepest(errors)
    form_errors = discord_form_errors(error)
    if error.validator in ("enum", "const"):
        # A union discriminator (e.g. an option's ``type``): list what every branch would have accepted.
        allowed: list[Any] = []
        for leaf in _leaves(errors):
            if leaf.absolute_path == error.absolute_path and leaf.validator in ("enum", "const"):
                values = leaf.validator_value if leaf.validator == "enum" else [leaf.validator_value]
                allowed += [v for v in values if v not in allowed]
        node = form_errors
        for part in error.absolute_path:
            node = node[str(part)]
        try:
            allowed.sort()
        except TypeError:
            allowed.sort(key=str)
        node["_errors"][0]["message"] = f"Value must be one of {allowed}."
        node["_errors"][0]["detail"] = f"{error.instance!r} matches no variant"
    return {"code": 50035, "errors": form_errors, "message": "Invalid Form Body"}


def _template_regex(template: str) -> re.Pattern[str]:
    parts = []
    for segment in template.strip("/").split("/"):
        parts.append("([^/]+)" if segment.startswith("{") else re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


@lru_cache(maxsize=1)
def _spec_routes() -> list[tuple[re.Pattern[str], str, list[str], set[str]]]:
    spec, _ = load_spec()
    routes = []
    for template, item in spec["paths"].items():
        names = re.findall(r"{([^}]+)}", template)
        methods = {m.upper() for m in item if m in {"get", "put", "post", "patch", "delete"}}
        routes.append((_template_regex(template), template, names, methods))
    # Literal segments win over parameters (``messages/@original`` before ``messages/{message_id}``).
    routes.sort(key=lambda r: (len(r[2]), r[1]))
    return routes


def match_route(path: str, method: str) -> tuple[str, dict[str, str]] | None:
    """The spec's path template for ``method path`` and its decoded path parameters."""
    for regex, template, names, methods in _spec_routes():
        m = regex.match(path)
        if m and method in methods:
            return template, {n: unquote(v) for n, v in zip(names, m.groups(), strict=True)}
    return None


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Recorded:
    """One request the bot made, with what the fake answered."""

    kind: str
    method: str
    path: str
    template: str | None
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    status: int
    response: Any
    message: dict[str, Any] | None = None
    interaction_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass
class InteractionState:
    """What Discord tracks per interaction token."""

    id: str
    token: str
    payload: dict[str, Any]
    created: float
    acknowledged: bool = False
    callback_type: int | None = None
    original: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeGuild:
    """One guild the bot is in: a text channel, a voice channel and who is in voice (user id -> state)."""

    id: str
    channel_id: str
    voice_channel_id: str
    name: str = "LoFi Test Guild"
    voice_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    # False: a server where only users installed the app. The bot gets none of its events, cannot see its
    # channels (403 Missing Access) and answers its interactions through their webhooks only.
    bot_member: bool = True


@dataclass
class GatewaySession:
    """One identified gateway connection: its shard ``[shard_id, num_shards]`` and what it was sent."""

    ws: web.WebSocketResponse
    send: Callable[[dict[str, Any]], Any]
    identify: dict[str, Any]
    shard: tuple[int, int]
    session_id: str
    seq: int = 0
    events: list[tuple[str, str | None]] = field(default_factory=list)  # (event name, guild id)

    @property
    def intents(self) -> int:
        return int(self.identify["intents"])


def shard_of(guild_id: int | str, num_shards: int) -> int:
    """Discord's sharding formula: the shard that receives a guild's events."""
    return (int(guild_id) >> 22) % num_shards


class CommandUnavailable(KeyError):
    """A test asked for a command where Discord would not offer it (its contexts or installation types)."""


class HTTPError(Exception):
    """Raised inside a handler to answer with Discord's error JSON."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


# Route kinds tests can wait for.
KINDS = {
    ("GET", "/users/@me"): "get_me",
    ("GET", "/gateway/bot"): "gateway_bot",
    ("GET", "/gateway"): "gateway",
    ("GET", "/applications/@me"): "application_info",
    ("GET", "/oauth2/applications/@me"): "application_info",
    ("GET", "/applications/{application_id}/commands"): "get_commands",
    ("PUT", "/applications/{application_id}/commands"): "commands",
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands"): "get_guild_commands",
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): "guild_commands",
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"): "interaction_callback",
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"): "get_original",
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"): "original_edit",
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"): "original_delete",
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"): "followup",
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): "followup_edit",
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): "followup_delete",
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"): "reaction_add",
    ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"): "reaction_remove",
    ("GET", "/channels/{channel_id}/messages/{message_id}"): "get_message",
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): "message_edit",
    ("POST", "/channels/{channel_id}/messages"): "channel_message",
    ("GET", "/channels/{channel_id}"): "get_channel",
}


def discord_json(body: Any, status: int = 200) -> web.Response:
    """JSON exactly as Discord labels it: discord.py parses only ``Content-Type: application/json``."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers={"Content-Type": "application/json"},
    )


def _iso(ts: float | None = None) -> str:
    return dt.datetime.fromtimestamp(ts if ts is not None else time.time(), dt.UTC).isoformat()


# ---------------------------------------------------------------------------------------------- the fake


class FakeDiscord:
    """An aiohttp server on 127.0.0.1 that the real discord.py client can log in to and use.

    ``guild_id``/``channel_id``/``voice_channel_id``/``voice_states`` are the first guild's; ``add_guild``
    adds others. ``shards`` is the shard count ``/gateway/bot`` recommends and IDENTIFY must honour.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int = 1_100_000_000_000_000_001,
        guild_id: int = 1_100_000_000_000_000_100,
        channel_id: int = 1_100_000_000_000_000_200,
        voice_channel_id: int = 1_100_000_000_000_000_300,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        ack_deadline: float = 3.0,
        heartbeat_interval_ms: int = 41_250,
        shards: int = 1,
    ) -> None:
        self.token = token
        self.application_id = str(application_id)
        self.bot_user_id = str(application_id)  # a bot's user id equals its application id
        self.guild_id = str(guild_id)
        self.channel_id = str(channel_id)
        self.voice_channel_id = str(voice_channel_id)
        self.guilds: dict[str, FakeGuild] = {}  # by id, in the order they were added
        default_guild = self.add_guild(guild_id, channel_id=channel_id, voice_channel_id=voice_channel_id)
        self.shards = shards
        self.sessions: dict[int, GatewaySession] = {}  # shard id -> its identified connection
        self.identify_attempts: list[dict[str, Any]] = []  # every IDENTIFY payload, refused ones too
        self.gateway_problems: list[str] = []  # what the client sent that Discord would ignore or refuse
        self.voice: Any = None  # a tests.e2e.fake_voice.FakeVoice: VOICE_SERVER_UPDATE names its endpoint
        # user id -> voice state (who is in which channel) in the first guild; each guild has its own
        self.voice_states: dict[str, dict[str, Any]] = default_guild.voice_states
        self.voice_requests: list[dict[str, Any]] = []  # every op 4 the bot sent
        self.upload_limit = upload_limit
        self.ack_deadline = ack_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.bot_user = {
            "id": self.bot_user_id,
            "username": "lofi-test-bot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "flags": 0,
            "public_flags": 0,
            "primary_guild": None,
        }
        self.users: dict[str, dict[str, Any]] = {}
        self.default_user = self.make_user(1_100_000_000_000_001_000, "listener")
        self.records: list[Recorded] = []
        self._faults: dict[str, list[tuple[int, int, str]]] = {}
        self.self_check_problems: list[str] = []  # answers of the fake that the spec would not allow
        self.commands: dict[str, dict[str, Any]] = {}  # global, by name
        self.guild_commands: dict[str, dict[str, dict[str, Any]]] = {}  # guild id -> name -> command
        self.messages: dict[str, dict[str, Any]] = {}
        self.reactions: dict[tuple[str, str], set[str]] = {}  # (message id, emoji) -> user ids
        self.interactions: dict[str, InteractionState] = {}  # by token
        self.private_channels: set[str] = set()  # group DMs the app was used in (user installs)
        # attachment id -> (its payload, its bytes): what users attached to a command, served on the CDN
        self.uploads: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.downloads: list[str] = []  # attachment ids fetched from the CDN, in order
        self.identify: dict[str, Any] | None = None  # the last IDENTIFY accepted
        self.intents = 0
        self.heartbeats = 0
        self.session_id = "fake-session-0001"
        self._ids = itertools.count()
        self._session_ids = itertools.count(1)
        self._identified = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeDiscord:
        """Start serving on a free loopback port."""
        load_spec()
        app = web.Application(client_max_size=4 * self.upload_limit + 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get(CDN_PREFIX + "/{channel}/{attachment}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Close gateway sockets and stop the server."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1000)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE`` (settings ``DISCORD_API_BASE``)."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (settings ``DISCORD_GATEWAY_URL``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ ids and objects

    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def add_guild(
        self,
        guild_id: int | str,
        *,
        channel_id: int | str | None = None,
        voice_channel_id: int | str | None = None,
        name: str = "LoFi Test Guild",
        bot_member: bool = True,
    ) -> FakeGuild:
        """Put the bot in one more guild (before it connects: GUILD_CREATE goes out at IDENTIFY), with a text
        and a voice channel of its own. Channel ids default to the guild id + 100 and + 200. ``bot_member``
        False: a guild where only users installed the app (the bot is not in it)."""
        gid = int(guild_id)
        guild = FakeGuild(
            id=str(gid),
            channel_id=str(channel_id if channel_id is not None else gid + 100),
            voice_channel_id=str(voice_channel_id if voice_channel_id is not None else gid + 200),
            name=name,
            bot_member=bot_member,
        )
        if guild.id in self.guilds:
            raise ValueError(f"guild {guild.id} exists")
        self.guilds[guild.id] = guild
        return guild

    def guild(self, guild_id: int | str | None = None) -> FakeGuild:
        """The guild ``guild_id`` (the first guild when None); KeyError when the bot is not in it."""
        return self.guilds[str(guild_id) if guild_id is not None else self.guild_id]

    def _guild_of_channel(self, channel_id: str) -> FakeGuild:
        for guild in self.guilds.values():
            if channel_id == guild.channel_id and not guild.bot_member:
                raise HTTPError(403, 50001, "Missing Access")  # the bot cannot see a server it is not in
            if channel_id == guild.channel_id:
                return guild
        raise HTTPError(404, 10003, "Unknown Channel")

    def session_for(self, guild_id: int | str | None) -> GatewaySession | None:
        """The identified connection that receives ``guild_id``'s events (DMs: shard 0's), or None."""
        for session in self.sessions.values():
            shard_id, num_shards = session.shard
            if guild_id is None and shard_id == 0:
                return session
            if guild_id is not None and shard_of(guild_id, num_shards) == shard_id:
                return session
        return None

    def make_user(self, user_id: int | str, username: str) -> dict[str, Any]:
        """Register a (non-bot) user that is a member of the test guild."""
        user = {
            "id": str(user_id),
            "username": username,
            "discriminator": "0",
            "global_name": username.title(),
            "avatar": None,
            "bot": False,
            "flags": 0,
            "public_flags": 0,
            "primary_guild": None,
        }
        self.users[user["id"]] = user
        return user

    def _member(self, user: dict[str, Any], permissions: str | None = None) -> dict[str, Any]:
        member = {
            "user": user,
            "roles": [],
            "joined_at": _iso(time.time() - 86_400),
            "deaf": False,
            "mute": False,
            "nick": None,
            "avatar": None,
            "flags": 0,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            member["permissions"] = permissions
        return member

    def channel_payload(self, guild: FakeGuild | None = None) -> dict[str, Any]:
        guild = guild or self.guild()
        return {
            "id": guild.channel_id,
            "type": 0,
            "guild_id": guild.id,
            "name": "lofi",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }

    def voice_channel_payload(self, guild: FakeGuild | None = None) -> dict[str, Any]:
        guild = guild or self.guild()
        return {
            "id": guild.voice_channel_id,
            "type": 2,
            "guild_id": guild.id,
            "name": "lofi-voice",
            "position": 1,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "bitrate": 64000,
            "user_limit": 0,
            "rtc_region": None,
            "video_quality_mode": 1,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }

    def guild_payload(self, guild: FakeGuild | None = None, *, intents: int | None = None) -> dict[str, Any]:
        """GUILD_CREATE's guild (voice states only with ``intents`` that include voice states)."""
        guild = guild or self.guild()
        intents = self.intents if intents is None else intents
        everyone = {
            "id": guild.id,
            "name": "@everyone",
            "permissions": MEMBER_PERMISSIONS,
            "position": 0,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }
        members = [self._member(self.bot_user)] + [self._member(u) for u in self.users.values()]
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.default_user["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "preferred_locale": "en-US",
            "application_id": None,
            "vanity_url_code": None,
            "max_members": 500_000,
            "features": [],
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "channels": [self.channel_payload(guild), self.voice_channel_payload(guild)],
            "threads": [],
            "members": members,
            "member_count": len(members),
            "presences": [],
            "voice_states": (
                [self._voice_state_payload(v, guild, with_member=False) for v in guild.voice_states.values()]
                if intents & INTENT_GUILD_VOICE_STATES
                else []
            ),
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": _iso(time.time() - 86_400),
            "large": False,
            "unavailable": False,
            "lazy": True,
        }

    def _attachments(self, files: list[UploadedFile], channel_id: str | None = None) -> list[dict[str, Any]]:
        channel_id = channel_id or self.channel_id
        out = []
        for f in files:
            att_id = self.snowflake()
            out.append(
                {
                    "id": att_id,
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{att_id}/{f.filename}",
                    "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/{att_id}/{f.filename}",
                    "content_type": f.content_type,
                    "flags": 0,
                }
            )
        return out

    def _message(
        self,
        payload: dict[str, Any],
        files: list[UploadedFile],
        *,
        interaction: InteractionState | None,
        guild: FakeGuild | None = None,
    ) -> dict[str, Any]:
        """A message in ``guild``'s text channel (an interaction's message: in the interaction's guild)."""
        dm = interaction is not None and "guild_id" not in interaction.payload
        if interaction is not None and not dm:
            guild = self.guild(interaction.payload["guild_id"])
        guild = guild or self.guild()
        channel_id = interaction.payload["channel_id"] if interaction is not None and dm else guild.channel_id
        attachments = self._attachments(files, channel_id)
        message = {
            "id": self.snowflake(),
            "type": 20 if interaction is not None else 0,
            "channel_id": channel_id,
            "guild_id": guild.id,
            "author": dict(self.bot_user),
            "content": payload.get("content") or "",
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts") or False),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": payload.get("embeds") or [],
            "components": _stored_components(payload.get("components") or []),
            "pinned": False,
            "flags": int(payload.get("flags") or 0),
            "reactions": [],
        }
        if dm:
            del message["guild_id"]  # a DM message has none
        if interaction is not None:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            user = interaction.payload["member"]["user"] if not dm else interaction.payload["user"]
            message["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.payload["type"],
                "user": user,
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            }
            if "message" in interaction.payload:  # a component interaction
                message["interaction_metadata"]["interacted_message_id"] = interaction.payload["message"][
                    "id"
                ]
        self.messages[message["id"]] = message
        return message

    # ------------------------------------------------------------------ recording and waiting

    async def _record(self, rec: Recorded) -> None:
        self.records.append(rec)
        async with self._changed:
            self._changed.notify_all()

    def find(self, match: str | Callable[[Recorded], bool]) -> list[Recorded]:
        """All records of a kind (or matching a predicate), oldest first."""
        pred = (lambda r: r.kind == match) if isinstance(match, str) else match
        return [r for r in self.records if pred(r)]

    async def wait_identified(self, timeout: float = 30.0) -> None:
        """Wait until a client has identified on the gateway (READY sent)."""
        await asyncio.wait_for(self._identified.wait(), timeout)

    async def wait_for(
        self, match: str | Callable[[Recorded], bool], timeout: float = 10.0, *, count: int = 1
    ) -> Recorded:
        """Wait until ``count`` records match (a kind name or a predicate); return the ``count``-th one."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                found = self.find(match)
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    seen = [(r.kind, r.status) for r in self.records]
                    raise TimeoutError(f"no request matching {match!r} within {timeout}s; seen: {seen}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    @property
    def errors(self) -> list[Recorded]:
        """Requests the fake refused (status >= 400)."""
        return [r for r in self.records if not r.ok]

    def assert_no_errors(self) -> None:
        """Fail with the refused requests and Discord's answers when any request was refused."""
        assert not self.errors, [(r.method, r.path, r.status, r.response) for r in self.errors]

    # ------------------------------------------------------------------ HTTP

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """A user's attachment, as Discord's CDN serves it (no authorisation: the URL is the secret)."""
        att_id = request.match_info["attachment"]
        self.downloads.append(att_id)
        upload = self.uploads.get(att_id)
        if upload is None or upload[0]["filename"] != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=upload[1], content_type=upload[0]["content_type"])

    def attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        size: int | None = None,
    ) -> dict[str, Any]:
        """An attachment a user uploads to a command option (pass it as the option's value); its bytes are
        served at its ``url`` on this fake's CDN, so the bot downloads them for real. ``size`` declares
        another size than the bytes' (a CDN or payload that lies)."""
        att_id = self.snowflake()
        url = f"http://127.0.0.1:{self.port}{CDN_PREFIX}/{self.channel_id}/{att_id}/{filename}"
        payload = {
            "id": att_id,
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "ephemeral": True,
            "flags": 0,
        }
        self.uploads[att_id] = (payload, data)
        return payload

    def _resolved_attachments(self, options: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Discord sends an attachment option's id as its value and the attachment in ``data.resolved``."""
        found: dict[str, dict[str, Any]] = {}
        for opt in options:
            if not isinstance(opt, dict):
                continue  # raw options a test forged: the bot has to cope, the fake only passes them on
            if (
                opt.get("type") == OPTION_ATTACHMENT
                and isinstance(opt.get("value"), str)
                and opt["value"] in self.uploads
            ):
                found[opt["value"]] = self.uploads[opt["value"]][0]
            found.update(
                self._resolved_attachments(opt.get("options") if isinstance(opt.get("options"), list) else [])
            )
        return found

    async def _not_found(self, request: web.Request) -> web.Response:
        return discord_json({"message": "404: Not Found", "code": 0}, 404)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path[len(API_PREFIX) :] or "/"
        path = "/" + "/".join(s for s in raw.split("/") if s)
        method = request.method
        query = dict(request.query)
        matched = match_route(path, method)
        rec = Recorded(
            kind="unknown",
            method=method,
            path=path,
            template=None,
            params={},
            query=query,
            json=None,
            files=[],
            status=0,
            response=None,
        )
        try:
            if matched is None:
                raise HTTPError(404, 0, "404: Not Found")
            template, params = matched
            rec.template, rec.params = template, params
            rec.kind = KINDS.get((method, template), "unhandled")
            self._check_auth(request, template, method)
            rec.json, rec.files = await self._read_body(request, template, method)
            self._injected_fault(rec.kind)
            handler = getattr(self, f"_h_{rec.kind}", None)
            if handler is None:
                raise HTTPError(404, 0, "404: Not Found")
            status, body = await handler(rec)
        except HTTPError as exc:
            status, body = exc.status, exc.body
        rec.status, rec.response = status, body
        problem = response_problem(rec)
        if problem is not None:  # the fake's own answer must look like Discord's
            self.self_check_problems.append(problem)
        await self._record(rec)
        if status == 204:
            return web.Response(status=204)
        return discord_json(body, status)

    def _check_auth(self, request: web.Request, template: str, method: str) -> None:
        security = operation_security(template, method)
        auth = request.headers.get("Authorization")
        if {} in security and auth is None:
            return  # webhook/interaction routes: the token in the path authorises
        if auth != f"Bot {self.token}":
            raise HTTPError(401, 0, "401: Unauthorized")

    async def _read_body(
        self, request: web.Request, template: str, method: str
    ) -> tuple[Any, list[UploadedFile]]:
        if not request.body_exists:
            if method in {"POST", "PUT", "PATCH"} and spec_requires_body(template, method):
                raise HTTPError(400, 50109, "The request body contains invalid JSON.")
            return None, []
        ctype = request.content_type
        files: list[UploadedFile] = []
        if ctype == "multipart/form-data":
            payload: Any = {}
            reader = await request.multipart()
            too_large = False
            async for part in reader:
                name = part.name or ""
                if name == "payload_json":
                    try:
                        payload = json.loads(await part.text())
                    except ValueError as exc:
                        raise HTTPError(400, 50109, "The request body contains invalid JSON.") from exc
                elif re.fullmatch(r"files\[\d+\]", name):
                    data = bytearray()
                    size = 0
                    while chunk := await part.read_chunk(256 * 1024):
                        size += len(chunk)
                        if size <= self.upload_limit:
                            data += chunk
                    if size > self.upload_limit:
                        too_large = True  # read on to the end, so the client sees the answer, not a reset
                        continue
                    files.append(
                        UploadedFile(
                            field=name,
                            filename=part.filename or "",
                            content_type=part.headers.get("Content-Type", "application/octet-stream"),
                            data=bytes(data),
                        )
                    )
                else:
                    raise HTTPError(400, 50035, "Invalid Form Body", {name: {"_errors": [_unknown_field()]}})
            if too_large:
                raise HTTPError(413, 40005, "Request entity too large")
            self._check_attachments(payload, files)
        elif ctype == "application/json":
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError as exc:
                raise HTTPError(400, 50109, "The request body contains invalid JSON.") from exc
        else:
            raise HTTPError(400, 50035, "Invalid Form Body", {"_errors": [_unknown_field(ctype)]})
        failure = validate_body(template, method, payload)
        if failure is not None:
            raise HTTPError(400, 50035, failure["message"], failure["errors"])
        return payload, files

    @staticmethod
    def _check_attachments(payload: Any, files: list[UploadedFile]) -> None:
        if not isinstance(payload, dict):
            return
        listed = {str(a.get("id")) for a in payload.get("attachments") or [] if isinstance(a, dict)}
        for f in files:
            index = f.field[len("files[") : -1]
            if listed and index not in listed:
                raise HTTPError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {"attachments": {"_errors": [{"code": "ATTACHMENT_NOT_FOUND", "message": f.field}]}},
                )

    def fail_next(
        self,
        kind: str,
        *,
        status: int = 500,
        code: int = 0,
        message: str = "500: Internal Server Error",
        count: int = 1,
    ) -> None:
        """Fault injection: answer the next ``count`` requests of ``kind`` with this error (after validation)."""
        self._faults.setdefault(kind, []).extend([(status, code, message)] * count)

    def _injected_fault(self, kind: str) -> None:
        faults = self._faults.get(kind)
        if faults:
            status, code, message = faults.pop(0)
            raise HTTPError(status, code, message)

    # ------------------------------------------------------------------ HTTP handlers

    async def _h_get_me(self, rec: Recorded) -> tuple[int, Any]:
        me = {k: v for k, v in self.bot_user.items() if k != "primary_guild"}
        return 200, {**me, "mfa_enabled": False, "locale": "en-US", "verified": True, "email": None}

    async def _h_gateway_bot(self, rec: Recorded) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": self.shards, "session_start_limit": limit}

    async def _h_gateway(self, rec: Recorded) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _h_application_info(self, rec: Recorded) -> tuple[int, Any]:
        return 200, {
            "id": self.application_id,
            "name": "LoFi Test",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "flags_new": "0",
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
            "owner": self.default_user,
            "team": None,
            "rpc_origins": [],
            "bot": self.bot_user,
        }

    def _check_app(self, rec: Recorded) -> None:
        if rec.params.get("application_id") != self.application_id:
            raise HTTPError(403, 50001, "Missing Access")

    def _store_commands(self, rec: Recorded, guild_id: str | None) -> list[dict[str, Any]]:
        self._check_app(rec)
        out = {}
        for cmd in rec.json or []:
            full = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **copy.deepcopy(cmd),
            }
            if full["default_member_permissions"] is not None:  # Discord answers bit sets as strings
                full["default_member_permissions"] = str(full["default_member_permissions"])
            for key, default in (("integration_types", [0]), ("contexts", [0, 1, 2])):
                if full.get(key) is None:
                    full[key] = default
            full.update(id=self.snowflake(), application_id=self.application_id, version=self.snowflake())
            if guild_id is not None:
                full["guild_id"] = guild_id
            else:
                full.setdefault("dm_permission", True)
            if full["name"] in out:
                raise HTTPError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {"_errors": [{"code": "APPLICATION_COMMANDS_DUPLICATE_NAME", "message": full["name"]}]},
                )
            out[full["name"]] = full
        if guild_id is None:
            self.commands = out
        else:
            self.guild_commands[guild_id] = out
        return list(out.values())

    async def _h_commands(self, rec: Recorded) -> tuple[int, Any]:
        return 200, self._store_commands(rec, None)

    async def _h_guild_commands(self, rec: Recorded) -> tuple[int, Any]:
        return 200, self._store_commands(rec, rec.params["guild_id"])

    async def _h_get_commands(self, rec: Recorded) -> tuple[int, Any]:
        self._check_app(rec)
        return 200, list(self.commands.values())

    async def _h_get_guild_commands(self, rec: Recorded) -> tuple[int, Any]:
        self._check_app(rec)
        return 200, list(self.guild_commands.get(rec.params["guild_id"], {}).values())

    def _interaction(self, token: str, *, acknowledged: bool = True) -> InteractionState:
        state = self.interactions.get(token)
        if state is None or (acknowledged and not state.acknowledged):
            raise HTTPError(404, 10015, "Unknown Webhook")
        if time.monotonic() - state.created > 15 * 60:
            raise HTTPError(401, 50027, "Invalid Webhook Token")
        return state

    async def _h_interaction_callback(self, rec: Recorded) -> tuple[int, Any]:
        state = self.interactions.get(rec.params["interaction_token"])
        if state is None or state.id != rec.params["interaction_id"]:
            raise HTTPError(404, 10062, "Unknown interaction")
        rec.interaction_id = state.id
        if state.acknowledged:
            raise HTTPError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - state.created > self.ack_deadline:
            raise HTTPError(404, 10062, "Unknown interaction")
        body = rec.json or {}
        ctype = body["type"]
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[state.payload["type"]]
        if ctype not in allowed:
            raise HTTPError(
                400, 40043, f"Interaction callback type {ctype} is not valid for this interaction."
            )
        data = body.get("data") or {}
        state.acknowledged, state.callback_type = True, ctype
        resource: dict[str, Any] | None = {"type": ctype}
        interaction = {
            "id": state.id,
            "type": state.payload["type"],
            "response_message_loading": ctype == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
        }
        if ctype in (4, 5):
            msg_payload = dict(data)
            if ctype == 5:
                msg_payload = {"flags": (int(data.get("flags") or 0) & EPHEMERAL) | LOADING}
            state.original = self._message(msg_payload, rec.files, interaction=state)
            rec.message = state.original
            interaction["response_message_id"] = state.original["id"]
            if ctype == 4:
                resource["message"] = state.original
        if ctype == 7 and "message" in state.payload:  # UPDATE_MESSAGE: the component's message is edited
            message = self.messages[state.payload["message"]["id"]]
            resource["message"] = self._edit(message, rec, data)
        if ctype not in (4, 7):
            resource = None  # only message-creating/updating callbacks return a resource
        if "with_response" not in rec.query or rec.query["with_response"] in ("0", "false"):
            return 204, None
        answer: dict[str, Any] = {"interaction": interaction}
        if resource is not None:
            answer["resource"] = resource
        return 200, answer

    def _check_webhook(self, rec: Recorded) -> InteractionState:
        if rec.params["webhook_id"] != self.application_id:
            raise HTTPError(404, 10015, "Unknown Webhook")
        state = self._interaction(rec.params["webhook_token"])
        rec.interaction_id = state.id
        return state

    def _edit(
        self, message: dict[str, Any], rec: Recorded, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = (rec.json or {}) if body is None else body
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if body.get("components"):
            message["components"] = _stored_components(body["components"])
        if rec.files or "attachments" in body:
            kept = {str(a.get("id")) for a in body.get("attachments") or []}
            old = [a for a in message["attachments"] if a["id"] in kept]
            message["attachments"] = old + self._attachments(rec.files, message["channel_id"])
        message["flags"] = int(message.get("flags", 0)) & ~LOADING
        message["edited_timestamp"] = _iso()
        rec.message = message
        return message

    async def _h_get_original(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        if state.original is None:
            raise HTTPError(404, 10008, "Unknown Message")
        return 200, state.original

    async def _h_original_edit(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        if state.original is None:
            raise HTTPError(404, 10008, "Unknown Message")
        return 200, self._edit(state.original, rec)

    async def _h_original_delete(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        if state.original is None:
            raise HTTPError(404, 10008, "Unknown Message")
        self.messages.pop(state.original["id"], None)
        state.original = None
        return 204, None

    async def _h_followup(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        body = rec.json or {}
        if not (
            body.get("content")
            or body.get("embeds")
            or rec.files
            or body.get("components")
            or body.get("poll")
        ):
            raise HTTPError(400, 50006, "Cannot send an empty message")
        owners = state.payload.get("authorizing_integration_owners") or {}
        if GUILD_INSTALL not in owners and len(state.followups) >= USER_APP_FOLLOWUPS:
            raise HTTPError(400, 40094, "This interaction has hit the maximum number of follow up messages")
        if state.original is not None and state.original["flags"] & LOADING:
            # Discord: a follow-up sent while the deferred "thinking" message still loads resolves it. It
            # becomes @original and keeps the defer's ephemeral flag whatever the follow-up's flags say
            # (discord/discord-api-docs#2742, #3466).
            message = self._edit(state.original, rec)
            message["flags"] = (int(body.get("flags") or 0) & ~EPHEMERAL) | (message["flags"] & EPHEMERAL)
            message["edited_timestamp"] = None
        else:
            message = self._message(body, rec.files, interaction=state)
        state.followups.append(message)
        rec.message = message
        wait = rec.query.get("wait", "false").lower() in ("1", "true")
        return (200, message) if wait else (204, None)

    def _followup_message(self, rec: Recorded, state: InteractionState) -> dict[str, Any]:
        for m in state.followups:
            if m["id"] == rec.params["message_id"]:
                return m
        raise HTTPError(404, 10008, "Unknown Message")

    async def _h_followup_edit(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        return 200, self._edit(self._followup_message(rec, state), rec)

    async def _h_followup_delete(self, rec: Recorded) -> tuple[int, Any]:
        state = self._check_webhook(rec)
        message = self._followup_message(rec, state)
        state.followups.remove(message)
        self.messages.pop(message["id"], None)
        return 204, None

    def _channel_message(self, rec: Recorded) -> dict[str, Any]:
        guild = self._guild_of_channel(rec.params["channel_id"])
        message = self.messages.get(rec.params.get("message_id", ""))
        if message is None or message["channel_id"] != guild.channel_id or message["flags"] & EPHEMERAL:
            raise HTTPError(404, 10008, "Unknown Message")
        return message

    async def _h_reaction_add(self, rec: Recorded) -> tuple[int, Any]:
        message = self._channel_message(rec)
        emoji = rec.params["emoji_name"]
        users = self.reactions.setdefault((message["id"], emoji), set())
        new = self.bot_user_id not in users
        users.add(self.bot_user_id)
        rec.message = message
        if new:  # Discord tells the bot about its own reactions too
            await self._dispatch_reaction("MESSAGE_REACTION_ADD", message, self.bot_user_id, emoji)
        return 204, None

    async def _h_reaction_remove(self, rec: Recorded) -> tuple[int, Any]:
        message = self._channel_message(rec)
        users = self.reactions.get((message["id"], rec.params["emoji_name"]), set())
        had = self.bot_user_id in users
        users.discard(self.bot_user_id)
        rec.message = message
        if had:
            await self._dispatch_reaction(
                "MESSAGE_REACTION_REMOVE", message, self.bot_user_id, rec.params["emoji_name"]
            )
        return 204, None

    def reactions_on(self, message_id: str) -> dict[str, set[str]]:
        """Emoji -> user ids currently reacting on a message."""
        return {e: set(u) for (mid, e), u in self.reactions.items() if mid == str(message_id) and u}

    async def _h_get_message(self, rec: Recorded) -> tuple[int, Any]:
        message = self._channel_message(rec)
        out = dict(message)
        out["reactions"] = [
            {
                "emoji": {"id": None, "name": e},
                "count": len(u),
                "count_details": {"burst": 0, "normal": len(u)},
                "me": self.bot_user_id in u,
                "me_burst": False,
                "burst_colors": [],
            }
            for e, u in self.reactions_on(message["id"]).items()
        ]
        return 200, out

    async def _h_message_edit(self, rec: Recorded) -> tuple[int, Any]:
        message = self._channel_message(rec)
        if message["author"]["id"] != self.bot_user_id:
            raise HTTPError(403, 50005, "Cannot edit a message authored by another user")
        return 200, self._edit(message, rec)

    async def _h_channel_message(self, rec: Recorded) -> tuple[int, Any]:
        guild = self._guild_of_channel(rec.params["channel_id"])
        body = rec.json or {}
        if not (body.get("content") or body.get("embeds") or rec.files or body.get("components")):
            raise HTTPError(400, 50006, "Cannot send an empty message")
        message = self._message(body, rec.files, interaction=None, guild=guild)
        rec.message = message
        return 200, message

    async def _h_get_channel(self, rec: Recorded) -> tuple[int, Any]:
        return 200, self.channel_payload(self._guild_of_channel(rec.params["channel_id"]))

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("v") != "10" or request.query.get("encoding", "json") != "json":
            return web.json_response({"message": "Unsupported version or encoding", "code": 0}, status=400)
        compress = request.query.get("compress")
        if compress not in (None, "zlib-stream"):
            return web.json_response(
                {"message": f"Unsupported compression {compress}", "code": 0}, status=400
            )
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        compressor = zlib.compressobj() if compress == "zlib-stream" else None
        send = self._sender(ws, compressor)
        try:
            await send(
                {
                    "op": OP_HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    "s": None,
                    "t": None,
                }
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                op = frame.get("op")
                if op == OP_HEARTBEAT:
                    self.heartbeats += 1
                    await send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                elif op == OP_IDENTIFY:
                    await self._on_identify(ws, send, frame.get("d") or {})
                elif op == OP_RESUME:
                    await send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
                elif op == OP_VOICE_STATE_UPDATE:
                    if not await self._on_voice_state_update(ws, frame.get("d")):
                        break
                elif op in (3, 8):  # presence, request guild members: accepted, ignored
                    continue
                else:
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            self._sockets.discard(ws)
            for shard_id, session in list(self.sessions.items()):
                if session.ws is ws:
                    del self.sessions[shard_id]
            if not self.sessions:
                self._identified.clear()
        return ws

    def _sender(self, ws: web.WebSocketResponse, compressor: Any) -> Callable[[dict[str, Any]], Any]:
        async def send(frame: dict[str, Any]) -> None:
            data = json.dumps(frame, separators=(",", ":")).encode()
            if compressor is None:
                await ws.send_str(data.decode())
            else:
                await ws.send_bytes(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))

        return send

    def _check_shard(self, data: dict[str, Any]) -> tuple[int, tuple[int, int] | None, bytes]:
        """(close code, shard, reason) for an IDENTIFY's ``shard``; code 0 when it is acceptable.

        Discord: ``[shard_id, num_shards]`` with ``0 <= shard_id < num_shards`` (4010 otherwise); a session
        that would hold more guilds than one shard may (here: fewer shards than ``/gateway/bot`` says) is
        refused with 4011. More shards than recommended are allowed (that is how bots reshard)."""
        shard = data.get("shard")
        if shard is None:
            if self.shards > 1:
                return CLOSE_SHARDING_REQUIRED, None, b"Sharding required."
            return 0, (0, 1), b""
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
            or shard[1] < 1
            or not 0 <= shard[0] < shard[1]
        ):
            return CLOSE_INVALID_SHARD, None, b"Invalid shard."
        if shard[1] < self.shards:
            return CLOSE_SHARDING_REQUIRED, None, b"Sharding required."
        return 0, (shard[0], shard[1]), b""

    async def _on_identify(self, ws: web.WebSocketResponse, send: Any, data: dict[str, Any]) -> None:
        self.identify_attempts.append(data)
        if any(s.ws is ws for s in self.sessions.values()):
            await ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if not isinstance(data.get("intents"), int):
            await ws.close(code=4013, message=b"Invalid intent(s).")
            return
        code, shard, reason = self._check_shard(data)
        if shard is None:
            await ws.close(code=code, message=reason)
            return
        if shard[0] in self.sessions:  # the fake routes each shard's events to one connection
            await ws.close(code=4005, message=b"Already authenticated.")
            return
        session_id = self.session_id if not self.sessions else f"fake-session-{next(self._session_ids):04d}"
        session = GatewaySession(ws=ws, send=send, identify=data, shard=shard, session_id=session_id)
        self.sessions[shard[0]] = session
        self.identify, self.intents = data, data["intents"]
        guilds = [g for g in self.guilds.values() if g.bot_member and shard_of(g.id, shard[1]) == shard[0]]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "session_type": "normal",
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "shard": list(shard),
            "application": {"id": self.application_id, "flags": 0},
            "_trace": ["fake-discord"],
        }
        await self._send_event(session, "READY", ready)
        if session.intents & INTENT_GUILDS:
            for g in guilds:
                await self._send_event(
                    session, "GUILD_CREATE", self.guild_payload(g, intents=session.intents)
                )
        self._identified.set()
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ voice

    def _voice_state_payload(
        self, v: dict[str, Any], guild: FakeGuild | None = None, *, with_member: bool = True
    ) -> dict[str, Any]:
        state = {
            "guild_id": (guild or self.guild()).id,
            "channel_id": v["channel_id"],
            "user_id": v["user_id"],
            "session_id": v["session_id"],
            "deaf": False,
            "mute": False,
            "self_deaf": v.get("self_deaf", False),
            "self_mute": v.get("self_mute", False),
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        if with_member:
            user = self.bot_user if v["user_id"] == self.bot_user_id else self.users.get(v["user_id"])
            if user is not None:
                state["member"] = self._member(user)
        return state

    async def _on_voice_state_update(self, ws: web.WebSocketResponse, d: Any) -> bool:
        """Gateway op 4 from the bot: join, move or leave a voice channel. Like Discord, answer with
        VOICE_STATE_UPDATE (the bot's new state) and, on a join, VOICE_SERVER_UPDATE naming the voice
        server. False when the payload is refused (the socket is closed, as Discord does: 4002).

        Discord acts on op 4 only from the session whose shard holds the guild: one sent on another shard's
        connection is ignored (and noted in ``gateway_problems``)."""
        fields = {"guild_id", "channel_id", "self_mute", "self_deaf"}
        if (
            not isinstance(d, dict)
            or not fields <= set(d)
            or not isinstance(d["self_mute"], bool)
            or not isinstance(d["self_deaf"], bool)
        ):
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return False
        self.voice_requests.append(d)
        guild = self.guilds.get(str(d["guild_id"]))
        if guild is None:
            return True  # an unknown guild: Discord ignores it
        session = self.session_for(guild.id)
        if session is None or session.ws is not ws:
            sent_on = next((s.shard for s in self.sessions.values() if s.ws is ws), None)
            self.gateway_problems.append(
                f"voice state update for guild {guild.id} (shard {shard_of(guild.id, self._num_shards())}) "
                f"sent on the connection of shard {sent_on}"
            )
            return True
        channel_id = d["channel_id"]
        if channel_id is None:
            if guild.voice_states.pop(self.bot_user_id, None) is not None:
                await self.dispatch(
                    "VOICE_STATE_UPDATE",
                    self._voice_state_payload(
                        {"channel_id": None, "user_id": self.bot_user_id, "session_id": session.session_id},
                        guild,
                    ),
                )
            return True
        if str(channel_id) != guild.voice_channel_id:
            return True  # not a voice channel of this guild: no answer, the client times out
        state = {
            "channel_id": guild.voice_channel_id,
            "user_id": self.bot_user_id,
            "session_id": f"voice-{self.snowflake()}",
            "self_deaf": d["self_deaf"],
            "self_mute": d["self_mute"],
        }
        guild.voice_states[self.bot_user_id] = state
        await self.dispatch("VOICE_STATE_UPDATE", self._voice_state_payload(state, guild))
        if self.voice is not None:
            token = self.voice.issue(guild.id, self.bot_user_id, state["session_id"])
            await self.dispatch(
                "VOICE_SERVER_UPDATE",
                {"token": token, "guild_id": guild.id, "endpoint": self.voice.endpoint},
            )
        return True

    def _num_shards(self) -> int:
        """The shard count the connected sessions use (the recommended one before any connects)."""
        return next(iter(self.sessions.values())).shard[1] if self.sessions else self.shards

    async def set_user_voice(
        self, user: dict[str, Any], channel_id: str | None, *, guild_id: int | str | None = None
    ) -> None:
        """A user joins (`channel_id`) or leaves (None) the voice channel of ``guild_id`` (the first guild
        when None); dispatched like Discord does."""
        guild = self.guild(guild_id)
        self.users.setdefault(str(user["id"]), user)
        if channel_id is None:
            state = guild.voice_states.pop(str(user["id"]), None)
            if state is None:
                return
            state = {**state, "channel_id": None}
        else:
            state = {
                "channel_id": str(channel_id),
                "user_id": str(user["id"]),
                "session_id": self.snowflake(),
            }
            guild.voice_states[str(user["id"])] = state
        session = self.session_for(guild.id)
        if session is not None and session.intents & INTENT_GUILD_VOICE_STATES:
            await self.dispatch("VOICE_STATE_UPDATE", self._voice_state_payload(state, guild))

    async def disconnect_bot_voice(self, *, guild_id: int | str | None = None) -> None:
        """A moderator disconnects the bot from voice in ``guild_id`` (the first guild when None): Discord
        sends VOICE_STATE_UPDATE with no channel."""
        guild = self.guild(guild_id)
        if guild.voice_states.pop(self.bot_user_id, None) is not None:
            session = self.session_for(guild.id)
            await self.dispatch(
                "VOICE_STATE_UPDATE",
                self._voice_state_payload(
                    {
                        "channel_id": None,
                        "user_id": self.bot_user_id,
                        "session_id": session.session_id if session else self.session_id,
                    },
                    guild,
                ),
            )
        if self.voice is not None:
            await self.voice.drop(code=4014)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send one DISPATCH (op 0) on the connection of the shard that holds ``data["guild_id"]`` (shard 0
        for an event without a guild, as Discord sends DMs)."""
        guild_id = data.get("guild_id")
        session = self.session_for(guild_id)
        if session is None:
            where = f"guild {guild_id}'s shard" if guild_id is not None else "shard 0"
            raise RuntimeError(f"no identified gateway connection for {where}")
        await self._send_event(session, event, data)

    async def _send_event(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        guild_id = data.get("guild_id", data.get("id") if event == "GUILD_CREATE" else None)
        session.events.append((event, str(guild_id) if guild_id is not None else None))
        await session.send({"op": OP_DISPATCH, "d": data, "s": session.seq, "t": event})

    async def wait_until_connected(self, timeout: float = 10.0) -> None:
        """Wait for the client's (first) IDENTIFY (its READY and GUILD_CREATEs have been sent by then)."""
        await asyncio.wait_for(self._identified.wait(), timeout)

    async def wait_sessions(self, count: int, timeout: float = 30.0) -> list[GatewaySession]:
        """Wait until ``count`` shards have identified; their sessions, by shard id."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while len(self.sessions) < count:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.sessions)} of {count} shards identified in {timeout}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return [self.sessions[k] for k in sorted(self.sessions)]

    # ------------------------------------------------------------------ test-side API

    def find_command(self, name: str, guild_id: int | str | None = None) -> dict[str, Any]:
        """The command called ``name`` registered for ``guild_id`` (the first guild when None): that guild's
        commands first, then global ones (only those in a guild the bot is not in)."""
        guild = self.guild(guild_id)
        gid = guild.id
        mine = self.guild_commands.get(gid, {}) if guild.bot_member else {}
        cmd = mine.get(name) or self.commands.get(name)
        if cmd is None:
            registered = sorted(set(self.commands) | set(self.guild_commands.get(gid, {})))
            raise KeyError(f"command {name!r} is not registered; registered: {registered}")
        return cmd

    def _typed_options(self, declared: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in declared or []}
        out = []
        for name, value in values.items():
            if name not in by_name:
                raise KeyError(f"option {name!r} not declared; declared: {sorted(by_name)}")
            opt = by_name[name]
            if opt["type"] in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
                out.append(
                    {
                        "name": name,
                        "type": opt["type"],
                        "options": self._typed_options(opt.get("options"), value),
                    }
                )
            elif opt["type"] == OPTION_ATTACHMENT and isinstance(value, dict):
                out.append({"name": name, "type": opt["type"], "value": value["id"]})
            else:
                out.append({"name": name, "type": opt["type"], "value": value})
        return out

    def _base_interaction(
        self,
        itype: int,
        user: dict[str, Any] | None,
        member_permissions: str | int | None,
        guild: FakeGuild | None = None,
    ) -> tuple[dict[str, Any], InteractionState]:
        guild = guild or self.guild()
        user = user or self.default_user
        self.users.setdefault(str(user["id"]), user)
        interaction_id = self.snowflake()
        token = f"itoken-{interaction_id}-" + "x" * 40
        perms = str(member_permissions) if member_permissions is not None else MEMBER_PERMISSIONS
        payload = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": itype,
            "guild_id": guild.id,
            "guild": {"id": guild.id, "features": [], "locale": "en-US"},
            "channel_id": guild.channel_id,
            "channel": self.channel_payload(guild),
            "member": self._member(user, perms),
            "token": token,
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {GUILD_INSTALL: guild.id},
            "context": CONTEXT_GUILD,
            "attachment_size_limit": self.upload_limit,
        }
        if not guild.bot_member:  # only the user installed the app here
            payload.update(
                authorizing_integration_owners={USER_INSTALL: user["id"]},
                app_permissions=USER_APP_PERMISSIONS,
            )
        state = InteractionState(id=interaction_id, token=token, payload=payload, created=time.monotonic())
        return payload, state

    @staticmethod
    def check_offered(cmd: dict[str, Any], payload: dict[str, Any]) -> None:
        """Discord offers a command only in the contexts its ``contexts`` list and only through an installation
        its ``integration_types`` list (what sync stored, Discord's defaults where unset): else the user never
        sees it and no interaction is sent (CommandUnavailable)."""
        context, owners = payload["context"], payload["authorizing_integration_owners"]
        installs = {str(t) for t in cmd.get("integration_types") or [0]}
        if context not in (cmd.get("contexts") or [0, 1, 2]) or not installs & set(owners):
            raise CommandUnavailable(
                f"/{cmd['name']} (contexts {cmd.get('contexts')}, integration_types {cmd.get('integration_types')})"
                f" is not offered in context {context} installed as {sorted(owners)}"
            )

    async def send_interaction(
        self,
        command_name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | None = None,
        member_permissions: str | int | None = None,
        guild_id: int | str | None = None,
        raw_options: Any = None,
    ) -> InteractionState:
        """Dispatch an APPLICATION_COMMAND INTERACTION_CREATE for a registered slash command, used in the text
        channel of ``guild_id`` (the first guild when None), on that guild's shard. ``raw_options`` replaces
        the typed ``data.options`` (what a client other than Discord's could send)."""
        guild = self.guild(guild_id)
        cmd = self.find_command(command_name, guild.id)
        payload, state = self._base_interaction(2, user, member_permissions, guild)
        self.check_offered(cmd, payload)
        data: dict[str, Any] = {
            "id": cmd["id"],
            "name": cmd["name"],
            "type": cmd.get("type", 1),
            "options": self._typed_options(cmd.get("options") or [], options or {})
            if raw_options is None
            else raw_options,
        }
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        resolved = self._resolved_attachments(data["options"] if isinstance(data["options"], list) else [])
        if resolved:
            data["resolved"] = {"attachments": resolved}
        payload["data"] = data
        return await self._deliver(payload, state)

    async def send_autocomplete(
        self,
        command_name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user: dict[str, Any] | None = None,
        guild_id: int | str | None = None,
    ) -> InteractionState:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE INTERACTION_CREATE (type 4): the user is typing
        ``options[focused]`` (the other options as typed so far) into an option the command declared with
        ``autocomplete``, as Discord sends only for those. The bot's answer is callback type 8, whose choices
        the spec bounds (25 at most) like every other request body."""
        guild = self.guild(guild_id)
        cmd = self.find_command(command_name, guild.id)
        typed = self._typed_options(cmd.get("options") or [], options)
        # a subcommand's options (``{"start": {"mood": "ra"}}``): the focused one is among the innermost
        level, declared_list = typed, cmd.get("options") or []
        while level and level[0]["type"] in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
            declared_list = (
                next(o for o in declared_list if o["name"] == level[0]["name"]).get("options") or []
            )
            level = level[0]["options"]
        declared = {o["name"]: o for o in declared_list}
        if not declared.get(focused, {}).get("autocomplete"):
            raise KeyError(f"option {focused!r} of /{command_name} is not declared with autocomplete")
        payload, state = self._base_interaction(4, user, None, guild)
        for option in level:
            if option["name"] == focused:
                option["focused"] = True
        payload["data"] = {"id": cmd["id"], "name": cmd["name"], "type": cmd.get("type", 1), "options": typed}
        if "guild_id" in cmd:
            payload["data"]["guild_id"] = cmd["guild_id"]
        return await self._deliver(payload, state)

    async def send_component(
        self,
        custom_id: str,
        message_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
        user: dict[str, Any] | None = None,
        member_permissions: str | int | None = None,
    ) -> InteractionState:
        """Dispatch a MESSAGE_COMPONENT INTERACTION_CREATE (a button click) on a message the bot sent."""
        message = self.messages.get(str(message_id))
        if message is None:
            raise KeyError(f"unknown message {message_id}")
        declared = [
            c.get("custom_id")
            for row in message.get("components") or []
            for c in (row.get("components") or [row])
        ]
        if custom_id not in declared:
            raise KeyError(f"custom_id {custom_id!r} not on message; components: {declared}")
        if "guild_id" in message:
            payload, state = self._base_interaction(
                3, user, member_permissions, self.guild(message["guild_id"])
            )
        else:  # a DM or group DM: who clicks has to be in it
            payload, state = self._base_interaction(3, user, member_permissions)
            private = message["channel_id"] if message["channel_id"] in self.private_channels else None
            payload = self._as_dm(payload, private)
            if payload["channel_id"] != message["channel_id"]:
                raise KeyError(f"user {payload['user']['id']} cannot see message {message_id} (another DM)")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload["data"] = data
        payload["message"] = message
        return await self._deliver(payload, state)

    def dm_channel_id(self, user: dict[str, Any]) -> str:
        """The id of the bot's DM channel with ``user`` (one per user, stable)."""
        return str(int(user["id"]) + 7)

    def _as_dm(self, payload: dict[str, Any], private_channel: str | None = None) -> dict[str, Any]:
        """``payload`` (a guild interaction) as Discord sends it from the bot's DM with the same user (context 1,
        BOT_DM), or from the group DM ``private_channel`` (context 2, PRIVATE_CHANNEL: only a user install
        reaches there): no guild, ``user`` instead of ``member``."""
        user = payload.pop("member")["user"]
        for key in ("guild_id", "guild", "guild_locale"):
            payload.pop(key, None)
        channel_id = private_channel or self.dm_channel_id(user)
        channel: dict[str, Any] = {"id": channel_id, "type": 1, "recipients": [user], "last_message_id": None}
        if private_channel is not None:
            self.private_channels.add(private_channel)
            channel.update(type=3, name=None, icon=None, owner_id=user["id"])
        payload.update(
            user=user,
            channel_id=channel_id,
            channel={**channel, "flags": 0},
            context=CONTEXT_BOT_DM if private_channel is None else CONTEXT_PRIVATE_CHANNEL,
            authorizing_integration_owners={USER_INSTALL: user["id"]},
            app_permissions=USER_APP_PERMISSIONS,
        )
        return payload

    async def send_dm_interaction(
        self,
        command_name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | None = None,
        raw_options: Any = None,
        private_channel: str | None = None,
    ) -> InteractionState:
        """Dispatch a slash command used in the bot's DM with ``user`` (a global command; a bot synced to one
        guild has only that guild's copy, which stands in), or in the group DM ``private_channel``, where the
        user installed the app. ``raw_options`` replaces the typed ``data.options`` (what a client other than
        Discord's could send). CommandUnavailable where Discord would not offer the command."""
        cmd = self.commands.get(command_name) or self.find_command(command_name)
        payload, state = self._base_interaction(2, user, None)
        payload = self._as_dm(payload, private_channel)
        self.check_offered(cmd, payload)
        payload["data"] = {
            "id": cmd["id"],
            "name": cmd["name"],
            "type": cmd.get("type", 1),
            "options": self._typed_options(cmd.get("options") or [], options or {})
            if raw_options is None
            else raw_options,
        }
        return await self._deliver(payload, state)

    async def forge_component(
        self,
        custom_id: str,
        *,
        guild_id: int | str | None = None,
        dm: bool = False,
        values: list[str] | None = None,
        user: dict[str, Any] | None = None,
    ) -> InteractionState:
        """Dispatch a MESSAGE_COMPONENT interaction with any ``custom_id``, on a message made up to carry it (a
        button, or a select when ``values`` are given): what a hostile client can send. In ``guild_id``'s
        channel, or in the bot's DM with ``user`` when ``dm``."""
        guild = self.guild(guild_id)
        payload, state = self._base_interaction(3, user, None, guild)
        if values is None:
            component: dict[str, Any] = {"type": 2, "style": 1, "label": "forged", "custom_id": custom_id}
        else:
            options = [{"label": v or "empty", "value": v} for v in values]
            component = {"type": 3, "custom_id": custom_id, "options": options}
        message = self._message(
            {"components": [{"type": 1, "components": [component]}]}, [], interaction=None, guild=guild
        )
        if dm:
            payload = self._as_dm(payload)
            message["channel_id"] = payload["channel_id"]
            del message["guild_id"]
        payload["data"] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            payload["data"]["values"] = values
        payload["message"] = message
        return await self._deliver(payload, state)

    def open_interaction(self, *, user: dict[str, Any] | None = None) -> InteractionState:
        """Register an interaction token without dispatching it (for HTTP-level tests of the fake)."""
        payload, state = self._base_interaction(2, user, None)
        payload["data"] = {"id": self.snowflake(), "name": "test", "type": 1, "options": []}
        self.interactions[state.token] = state
        return state

    async def _deliver(self, payload: dict[str, Any], state: InteractionState) -> InteractionState:
        self.interactions[state.token] = state
        state.created = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", payload)
        return state

    async def add_reaction(
        self, channel_id: str | int, message_id: str | int, user_id: str | int, emoji: str
    ) -> bool:
        """A user reacts: MESSAGE_REACTION_ADD, delivered only with the reactions intent (like Discord)."""
        return await self._reaction("MESSAGE_REACTION_ADD", channel_id, message_id, user_id, emoji)

    async def remove_reaction(
        self, channel_id: str | int, message_id: str | int, user_id: str | int, emoji: str
    ) -> bool:
        """A user removes a reaction: MESSAGE_REACTION_REMOVE."""
        return await self._reaction("MESSAGE_REACTION_REMOVE", channel_id, message_id, user_id, emoji)

    async def _reaction(
        self, event: str, channel_id: str | int, message_id: str | int, user_id: str | int, emoji: str
    ) -> bool:
        message = self.messages.get(str(message_id))
        if message is None or message["channel_id"] != str(channel_id) or message["flags"] & EPHEMERAL:
            raise KeyError(f"unknown (or ephemeral) message {message_id} in channel {channel_id}")
        users = self.reactions.setdefault((str(message_id), emoji), set())
        if event == "MESSAGE_REACTION_ADD":
            users.add(str(user_id))
        else:
            users.discard(str(user_id))
        return await self._dispatch_reaction(event, message, str(user_id), emoji)

    async def _dispatch_reaction(self, event: str, message: dict[str, Any], user_id: str, emoji: str) -> bool:
        guild = self.guilds.get(message.get("guild_id") or "")
        if guild is None or not guild.bot_member:
            return False  # a DM or a server the bot is not in: no guild reaction event reaches it
        session = self.session_for(message["guild_id"])
        if session is None or not session.intents & INTENT_GUILD_MESSAGE_REACTIONS:
            return False
        channel_id, message_id = message["channel_id"], message["id"]
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "guild_id": message["guild_id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if event == "MESSAGE_REACTION_ADD":
            if user_id == self.bot_user_id:
                user = self.bot_user
            else:
                user = self.users.get(user_id) or self.make_user(user_id, f"user{user_id}")
            data["member"] = self._member(user)
            data["message_author_id"] = message["author"]["id"]
            data["burst_colors"] = []
        await self.dispatch(event, data)
        return True


def _unknown_field(name: str = "") -> dict[str, str]:
    return {"code": "UNKNOWN_FIELD", "message": f"Unknown field {name}".strip()}


def spec_requires_body(template: str, method: str) -> bool:
    spec, _ = load_spec()
    return bool(spec["paths"][template][method.lower()].get("requestBody", {}).get("required"))


def _stored_components(components: Any) -> Any:
    """Components as Discord returns them: numbered ``id``s, null fields (a unicode emoji's ``id``) dropped."""
    counter = itertools.count(1)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(c) for c in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        if isinstance(node.get("type"), int) and node.get("id") is None:  # a component, numbered depth-first
            out["id"] = next(counter)
        out.update((k, walk(v)) for k, v in node.items() if v is not None)
        return out

    return walk(components)
