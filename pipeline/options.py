"""CLI flags generated from the config dataclasses, and the configs built back from them.

Each field of a config in ``schemas.config`` is one flag: ``image_size`` is
``--image-size``, booleans get ``--x`` / ``--no-x``, tuples take several values
(repeated or comma-separated). Flags we do not know are Beam's and pass through.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from typing import Any

from paircurate.schemas.config import SECTIONS, ConfigError, JobConfig


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _is_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple


def _scalar_type(hint: Any) -> type:
    """``int | None`` -> ``int``; a plain type stays as it is."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


class _SplitCommas(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        current = list(getattr(namespace, self.dest) or [])
        for value in values:
            current.extend(part for part in value.split(",") if part)
        setattr(namespace, self.dest, current)


def add_config_arguments(parser: argparse.ArgumentParser, sections=SECTIONS) -> None:
    for title, cls in sections.items():
        group = parser.add_argument_group(f"{title} options", cls.__doc__)
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            _add_field(group, field, hints[field.name])


def add_override_arguments(
    parser: argparse.ArgumentParser, names_by_section: dict[str, tuple[str, ...]], shown: str
) -> None:
    """Flags for some options of a stored run, each left None unless given.

    Commands that work on a finished run (``preview``) change a few of its
    options; ``shown`` says in the help what an option not given stays at.
    """
    for title, names in names_by_section.items():
        cls = SECTIONS[title]
        group = parser.add_argument_group(f"{title} options", cls.__doc__)
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in names:
                _add_field(group, field, hints[field.name], shown=shown)


def overrides_from_args(
    args: argparse.Namespace, names_by_section: dict[str, tuple[str, ...]]
) -> dict[str, dict[str, Any]]:
    """{section: {option: value}} of the override flags given (see add_override_arguments)."""
    found: dict[str, dict[str, Any]] = {}
    for section, names in names_by_section.items():
        for name in names:
            value = getattr(args, name, None)
            if value is not None:
                value = tuple(value) if isinstance(value, list) else value
                found.setdefault(section, {})[name] = value
    return found


def _add_field(group, field: dataclasses.Field, hint: Any, shown: str | None = None) -> None:
    meta = field.metadata
    help_text = meta.get("help", "")
    default = field.default if shown is None else None
    kwargs: dict[str, Any] = {"dest": field.name}
    if hint is bool:
        kwargs.update(action=argparse.BooleanOptionalAction, default=default)
    elif _is_tuple(hint):
        kwargs.update(nargs="+", action=_SplitCommas, default=None, metavar="VALUE")
    else:
        kwargs.update(type=_scalar_type(hint), default=None)
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
    if shown is None:
        shown = "none" if default in ((), None) else default
        if isinstance(default, float) and math.isinf(default):
            shown = "no limit"
    group.add_argument(flag_name(field.name), help=f"{help_text} (default: {shown})", **kwargs)


def option_flags() -> frozenset[str]:
    """Every flag of ours (``--x`` and, for booleans too, ``--no-x``), to tell them from Beam's."""
    return frozenset(
        prefix + flag_name(field.name)[2:]
        for cls in SECTIONS.values()
        for field in dataclasses.fields(cls)
        for prefix in ("--", "--no-")
    )


def section_from_args(cls: type, args: argparse.Namespace) -> Any:
    values = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def config_from_args(args: argparse.Namespace) -> JobConfig:
    """Build and validate the job config; a bad value raises ConfigError naming its flag."""
    sections = {name: section_from_args(cls, args) for name, cls in SECTIONS.items()}
    return JobConfig(**sections)


def option_table() -> str:
    """The option table of docs/options.md, from the same fields the CLI is built from."""
    lines = ["| option | default | what it does |", "|---|---|---|"]
    for cls in SECTIONS.values():
        for field in dataclasses.fields(cls):
            default = field.default
            if isinstance(default, float) and math.isinf(default):
                default = "no limit"
            elif default in ((), None, ""):
                default = "—"
            help_text = field.metadata.get("help", "").replace("|", "\\|")
            lines.append(f"| `{flag_name(field.name)}` | `{default}` | {help_text} |")
    return "\n".join(lines)


__all__ = ["ConfigError", "add_config_arguments", "config_from_args", "option_table"]
