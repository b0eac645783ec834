"""Dataflow flex-template entry point: build the paircurate job graph and submit it.

The flex launcher runs this file with each template parameter as ``--name=value``
(underscores, as in flex_template_metadata.json) plus Beam's own options
(``--runner``, ``--project``, ``--region``, ``--temp_location``,
``--sdk_container_image``, ...). Our parameters are turned into the CLI's
dashed flags (a boolean's ``true``/``false`` into ``--x``/``--no-x``);
everything else goes to Beam, as with ``paircurate run``.

Unlike ``paircurate run`` this does not wait for the job: under the launcher the
runner only writes the job description (there is no job to wait on yet), so
``stats.json`` gets the counts, which the job itself writes, but no timings.
"""

from __future__ import annotations

import logging
import sys
import typing
from dataclasses import fields

from paircurate.pipeline.run import parse_args, run_job
from paircurate.schemas.config import SECTIONS, ConfigError

TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no"}


def our_flags() -> dict[str, bool]:
    """Our option names (underscored), each with whether it is a boolean."""
    flags = {}
    for cls in SECTIONS.values():
        hints = typing.get_type_hints(cls)
        for field in fields(cls):
            flags[field.name] = hints[field.name] is bool
    return flags


def boolean_flag(name: str, value: str) -> str:
    """``text_only``, ``true`` -> ``--text-only``; ``false`` -> ``--no-text-only``.

    A template parameter always has a value, and our CLI's booleans take none.
    """
    dashed_name = name.replace("_", "-")
    if value.lower() in TRUE:
        return f"--{dashed_name}"
    if value.lower() in FALSE:
        return f"--no-{dashed_name}"
    raise ConfigError(f"{name}={value}: a boolean parameter takes true or false")


def dashed(argv: list[str]) -> list[str]:
    """``--url_col=x`` -> ``--url-col=x`` for our options; Beam's stay as they are."""
    ours = our_flags()
    out = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        option = name[2:]
        if arg.startswith("--") and option in ours:
            if ours[option] and sep:
                arg = boolean_flag(option, value)
            else:
                arg = "--" + option.replace("_", "-") + sep + value
        out.append(arg)
    return out


def main(argv: list[str]) -> None:
    config, beam_args = parse_args(dashed(argv))
    run_job(config, beam_args, wait=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
