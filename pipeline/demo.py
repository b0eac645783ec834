"""The demo: a synthetic web on 127.0.0.1, the whole job over it, and a short summary.

It is the first command a new user runs, and the same path the end-to-end
tests and ``bench/e2e.py`` take.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.run import parse_args, run_job
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest
from paircurate.synthweb.crawl import write_crawl

log = logging.getLogger(__name__)

# Rules the demo turns on so that its labelled tiny and extreme-aspect images show
# up as drops, and a short timeout for its slow hosts; a real run sets its own.
DEMO_DEFAULTS = ["--min-image-size", "64", "--max-aspect-ratio", "4", "--timeout", "3"]
# Where `paircurate demo` serves its synthetic web when the port is free. uids hash the
# URL, port included, and the keeper of equal near-duplicates is the smallest uid: on one
# port, two demos of the same seed keep the same rows.
DEMO_PORT = 8631


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
    port: int = 0,
    from_crawl: bool = False,
) -> dict:
    """Generate and serve ``pairs`` rows, run the job on them, return its stats.

    The web is served on ``port`` if it is free, else on any free one (0: any).
    ``from_crawl``: the input is WARC files of pages that show the pairs (with
    the crawl's faults), read through their paths list, instead of a URL list.
    """
    web = SyntheticWeb(pairs, seed=seed, mix=mix or WebMix())
    fs.makedirs(os.path.join(output, "input"))
    with serve(web, slow_seconds, port) as server:
        if from_crawl:
            crawl = write_crawl(web, server.base_url, os.path.join(output, "input", "crawl"))
            inputs = ["--input", os.path.join(crawl.folder, "warc.paths.gz")]
        else:
            manifest = os.path.join(output, "input", "manifest.parquet")
            write_manifest(web, server.base_url, manifest)
            inputs = ["--input", manifest, "--keep-cols", "truth_label,truth_language"]
        argv = [
            *demo_defaults(),
            *extra_args,
            *inputs,
            "--output", output,
            "--allow-private-networks",
        ]  # fmt: skip
        config, beam_args = parse_args(argv)
        return run_job(config, beam_args)


@contextlib.contextmanager
def serve(web: SyntheticWeb, slow_seconds: float, port: int) -> Iterator[SyntheticWebServer]:
    """The web served on ``port``, or on a free port where that one is taken."""
    try:
        server = SyntheticWebServer(web, port=port, slow_seconds=slow_seconds).start()
    except OSError as error:
        if not port:
            raise
        log.warning(
            "port %d is taken (%s); serving the demo on a free port, so its uids, and which "
            "of two equal near-duplicates it keeps, differ from a demo on port %d",
            port, error.strerror, port,
        )  # fmt: skip
        server = SyntheticWebServer(web, slow_seconds=slow_seconds).start()
    try:
        yield server
    finally:
        server.stop()


def summary_text(stats: dict, output: str) -> str:
    if stats["options"]["output"]["text_only"]:
        parts, parts_line = "metadata part(s)", f"metadata: {os.path.join(output, 'metadata')}"
    else:
        parts, parts_line = "shard(s)", f"shards:   {os.path.join(output, 'shards')}"
    lines = []
    if "extract" in stats:
        found, failed = stats["extract"], stats["extract"]["record_outcomes"]["failed"]
        lines.append(
            f"extract:  {found['pairs']} pairs of {found['candidates']} <img> in "
            f"{found['records']} records ({failed} failed)"
        )
    lines += [
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
