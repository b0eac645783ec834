"""The demo: a synthetic web on 127.0.0.1, the whole job over it, and a short summary.

It is the first command a new user runs, and the same path the end-to-end
tests and ``bench/e2e.py`` take.
"""

from __future__ import annotations

import logging
import os

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.run import parse_args, run_job
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

log = logging.getLogger(__name__)

# Rules the demo turns on so that its labelled tiny and extreme-aspect images show
# up as drops, and a short timeout for its slow hosts; a real run sets its own.
DEMO_DEFAULTS = ["--min-image-size", "64", "--max-aspect-ratio", "4", "--timeout", "3"]


def demo_defaults() -> list[str]:
    """DEMO_DEFAULTS, then the CLIP arguments: the project's reference scorer at its
    calibrated threshold (no real CLIP weights can be downloaded for a demo)."""
    from paircurate.transforms.scoring.reference_scorer import MODEL_NAME, REFERENCE_THRESHOLD

    clip = ["--clip-model", MODEL_NAME, "--clip-threshold", str(REFERENCE_THRESHOLD)]
    return [*DEMO_DEFAULTS, *clip]


def run_demo(
    output: str,
    pairs: int,
    seed: int = 0,
    extra_args: list[str] = (),
    mix: WebMix | None = None,
    slow_seconds: float = 6.0,
) -> dict:
    """Generate and serve ``pairs`` rows, run the job on them, return its stats."""
    web = SyntheticWeb(pairs, seed=seed, mix=mix or WebMix())
    fs.makedirs(os.path.join(output, "input"))
    with SyntheticWebServer(web, slow_seconds=slow_seconds) as server:
        manifest = write_manifest(
            web, server.base_url, os.path.join(output, "input", "manifest.parquet")
        )
        argv = [
            *demo_defaults(),
            *extra_args,
            "--input", manifest,
            "--output", output,
            "--allow-private-networks",
            "--keep-cols", "truth_label,truth_language",
        ]  # fmt: skip
        config, beam_args = parse_args(argv)
        return run_job(config, beam_args)


def summary_text(stats: dict, output: str) -> str:
    if stats["options"]["output"]["text_only"]:
        parts, parts_line = "metadata part(s)", f"metadata: {os.path.join(output, 'metadata')}"
    else:
        parts, parts_line = "shard(s)", f"shards:   {os.path.join(output, 'shards')}"
    lines = [
        f"rows in:  {stats['rows_in']}",
        f"kept:     {stats['kept']} in {stats['shards']} {parts}",
    ]
    for status, entry in stats["status"].items():
        if status != "kept":
            lines.append(f"{status + ':':9} {entry['count']}")
    for reason, entry in stats["reason"].items():
        lines.append(f"  {reason:28} {entry['count']:>8}  {entry['share']:.1%}")
    lines += [
        f"took:     {stats['duration_s']:.1f} s ({stats['rows_per_s']} rows/s)",
        parts_line,
        f"ledger:   {os.path.join(output, 'ledger')}",
        f"stats:    {os.path.join(output, 'stats.json')}",
    ]
    return "\n".join(lines)
