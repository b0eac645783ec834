"""Dataflow flex-template entry point: build the paircurate job graph and submit it.

The flex launcher runs this file with each template parameter as ``--name=value``
(underscores, as in flex_template_metadata.json) plus Beam's own options
(``--runner``, ``--project``, ``--region``, ``--temp_location``,
``--sdk_container_image``, ...). Our parameters are turned into the CLI's
dashed flags; everything else goes to Beam, as with ``paircurate run``.

Unlike ``paircurate run`` this does not wait for the job: under the launcher the
runner only writes the job description (there is no job to wait on yet), so
``stats.json`` gets the counts, which the job itself writes, but no timings.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import fields

from paircurate.pipeline.run import parse_args, run_job
from paircurate.schemas.config import SECTIONS


def our_flags() -> set[str]:
    return {field.name for cls in SECTIONS.values() for field in fields(cls)}


def dashed(argv: list[str]) -> list[str]:
    """``--url_col=x`` -> ``--url-col=x`` for our options; Beam's stay as they are."""
    ours = our_flags()
    out = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if arg.startswith("--") and name[2:] in ours:
            arg = "--" + name[2:].replace("_", "-") + sep + value
        out.append(arg)
    return out


def main(argv: list[str]) -> None:
    config, beam_args = parse_args(dashed(argv))
    run_job(config, beam_args, wait=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
