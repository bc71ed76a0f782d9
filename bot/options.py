"""Server-side validation of slash-command options, for every command, before any of our code runs.

Discord's client enforces the declared types, ranges and choices, but anyone holding a bot's interaction
endpoint (or a buggy client) can send anything: a missing required option, a string where an integer
belongs, a seed out of range. discord.py passes such values through unchecked, so the tree's
`interaction_check` compares each option with the command's declared parameters and raises `BadOption`
naming what was wrong; the error handler shows it like every other expected error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import discord
from discord import AppCommandOptionType as T
from discord import app_commands

from bot.error_handler import send_error
from bot.errors import BadOption
from music.limits import quoted

_KINDS = {
    T.string: "text",
    T.integer: "a whole number",
    T.number: "a number",
    T.boolean: "true or false",
    T.user: "a user",
    T.channel: "a channel",
    T.role: "a role",
    T.mentionable: "a user or role",
    T.attachment: "a file",
}
_SNOWFLAKE_TYPES = (T.user, T.channel, T.role, T.mentionable, T.attachment)


def _type_ok(kind: T, value: Any) -> bool:
    if kind is T.string:
        return isinstance(value, str)
    if kind is T.integer:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is T.number:
        return isinstance(value, int | float) and not isinstance(value, bool) and value == value
    if kind is T.boolean:
        return isinstance(value, bool)
    if kind in _SNOWFLAKE_TYPES:
        return isinstance(value, str) and value.isdigit() and len(value) <= 20
    return True


def check_option(param: app_commands.Parameter, option: dict[str, Any]) -> None:
    """BadOption if `option` (one entry of the interaction's `data.options`) does not fit `param`."""
    name = param.display_name
    if "value" not in option:
        raise BadOption(f"The option `{name}` came without a value.")
    value = option["value"]
    kind = param.type
    if not _type_ok(kind, value):
        raise BadOption(f"The option `{name}` must be {_KINDS.get(kind, kind.name)}, not {quoted(value)}.")
    if param.choices and value not in [c.value for c in param.choices]:
        allowed = ", ".join(str(c.value) for c in param.choices[:25])
        raise BadOption(f"The option `{name}` must be one of {allowed}; {quoted(value)} is not one of them.")
    if kind in (T.integer, T.number):
        low, high = param.min_value, param.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            raise BadOption(
                f"The option `{name}` must be between {low if low is not None else '-∞'} and "
                f"{high if high is not None else '∞'}, not {quoted(value)}."
            )
    if kind is T.string:
        low, high = param.min_value, param.max_value  # discord.py keeps min/max_length here for strings
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise BadOption(f"The option `{name}` must be {low or 0} to {high} characters long.")


def check_options(command: app_commands.Command[Any, ..., Any], options: list[dict[str, Any]]) -> None:
    """BadOption for the first option of `options` that does not fit `command`, or a required one missing."""
    params = {p.display_name: p for p in command.parameters}
    given: set[str] = set()
    for option in options if isinstance(options, list) else []:
        name = option.get("name") if isinstance(option, dict) else None
        if name not in params:
            raise BadOption(f"`/{command.qualified_name}` has no option {quoted(name)}.")
        if name in given:
            raise BadOption(f"The option `{name}` was given twice.")
        given.add(name)
        check_option(params[name], option)
    missing = [n for n, p in params.items() if p.required and n not in given]
    if missing:
        raise BadOption(
            f"`/{command.qualified_name}` needs the option{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"`{n}`" for n in missing)
            + "."
        )


def _well_formed(options: Any) -> bool:
    """True when `options` is what Discord sends: a list of objects, each with a name and an integer type,
    a sub-command's own options well formed too. discord.py indexes them unchecked, so anything else would
    raise inside it before any handler could answer."""
    if options is None:
        return True
    if not isinstance(options, list):
        return False
    for option in options:
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            return False
        kind = option.get("type")
        if not isinstance(kind, int) or isinstance(kind, bool):
            return False
        if kind in (1, 2) and not _well_formed(option.get("options")):
            return False
    return True


def _leaf_options(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = data.get("options") or []
    while isinstance(options, list) and options and options[0].get("type") in (1, 2):  # sub-commands
        options = options[0].get("options") or []
    return options if isinstance(options, list) else []


async def interaction_check(interaction: discord.Interaction) -> bool:
    """`CommandTree.interaction_check`: refuse a slash command whose options do not fit its declaration."""
    if interaction.type is not discord.InteractionType.application_command:
        return True  # components carry no options; autocomplete values are partial by design
    data: Mapping[str, Any] = interaction.data or {}
    if data.get("type", 1) != 1:
        return True  # context menus
    if not _well_formed(data.get("options")):
        # Answered here: discord.py's error path reads `interaction.command`, which fails on these options.
        name = str(data.get("name"))[:32]
        await send_error(interaction, f"`/{name}` came with options I cannot read; please try again.")
        return False
    command = interaction.command
    if isinstance(command, app_commands.Command):
        check_options(command, _leaf_options(data))
    return True
