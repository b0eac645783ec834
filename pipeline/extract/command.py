"""``paircurate extract``: the pairs of WAT or WARC files as Parquet, with their extract ledger.

DIR/pairs/part-NNNNNN.parquet (one per crawl file: url, caption and the
provenance columns) is what ``paircurate run --input DIR/pairs`` reads;
DIR/extract_ledger/ holds every candidate and failed record with its
reason, and DIR/stats.json the counts. ``run`` with a crawl input does the
same step at the head of the job instead.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

import apache_beam as beam

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.extract.extract_step import ExtractPairs
from paircurate.pipeline.extract.plan import plan_crawl
from paircurate.pipeline.memory import limit_malloc_arenas
from paircurate.pipeline.options import add_config_arguments, section_from_args
from paircurate.pipeline.progress import report_progress
from paircurate.pipeline.run import json_safe, make_pipeline, package_versions
from paircurate.schemas.config import ConfigError, ExtractConfig, InputConfig
from paircurate.transforms.output import storage
from paircurate.transforms.output.store import OutputLayout

SECTIONS = {"inputs": InputConfig, "extract": ExtractConfig}


def add_extract_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the outputs")
    add_config_arguments(parser, SECTIONS)


def parse_extract_args(argv: list[str]) -> tuple[InputConfig, ExtractConfig, str, list[str]]:
    """(inputs, extract options, output folder, Beam's arguments)."""
    parser = argparse.ArgumentParser(prog="paircurate extract", add_help=False)
    add_extract_arguments(parser)
    known, beam_args = parser.parse_known_args(argv)
    inputs = section_from_args(InputConfig, known)
    return inputs, section_from_args(ExtractConfig, known), known.output, beam_args


class WriteExtractStatsDoFn(beam.DoFn):
    """stats.json of an extract run: its "extract" section and what the run was."""

    def __init__(self, layout: OutputLayout, run_info: dict[str, Any]):
        self.layout, self.run_info = layout, run_info

    def process(self, section: dict[str, Any]):
        document = {**section, **self.run_info}
        data = json.dumps(document, indent=2).encode()
        storage.write_bytes(self.layout.files, self.layout.stats_json, data)
        for folder in (self.layout.pairs, self.layout.extract_ledger):
            storage.delete_temporaries(self.layout.files, folder)
        yield document


def run_extract(argv: list[str], test_pipeline: beam.Pipeline | None = None) -> dict | None:
    """Run ``paircurate extract``; returns stats.json's document (None if only submitted)."""
    inputs, extract, output, beam_args = parse_extract_args(argv)
    limit_malloc_arenas()
    fs.configure(beam_args)
    plan = plan_crawl(inputs, extract)
    if plan is None:
        raise ConfigError(
            "paircurate extract reads WAT or WARC files: name them .warc.wat.gz / .warc.gz "
            "(or wat.paths.gz / warc.paths.gz), or set --input-format wat or warc"
        )
    pipeline = test_pipeline or make_pipeline(list(beam_args))
    layout = OutputLayout(fs.FILES, output)
    options = {"inputs": asdict(inputs), "extract": asdict(extract), "output": output}
    run_info = {"options": json_safe(options), "versions": package_versions()}
    step = ExtractPairs(plan, extract, layout, write_pairs=True)
    _ = pipeline | "Extract" >> step
    _ = step.stats | "WriteStats" >> beam.ParDo(WriteExtractStatsDoFn(layout, run_info))
    started = time.perf_counter()
    with report_progress():
        result = pipeline.run()
        result.wait_until_finish()
    duration = time.perf_counter() - started
    stats = json.loads(fs.read_bytes(layout.stats_json))
    stats["duration_s"] = round(duration, 3)
    pairs = stats["extract"]["pairs"]
    stats["pairs_per_s"] = round(pairs / duration, 1) if duration else None
    fs.write_bytes(layout.stats_json, json.dumps(stats, indent=2).encode())
    return stats


def summary_text(stats: dict, output: str) -> str:
    """What ``paircurate extract`` prints."""
    section = stats["extract"]
    lines = [
        f"files:      {section['files']} ({section['format']})",
        f"records:    {section['records']}",
        f"candidates: {section['candidates']}",
        f"pairs:      {section['pairs']}",
    ]
    for reason, entry in section["reason"].items():
        lines.append(f"  {reason:28} {entry['count']:>8}  {entry['share']:.1%}")
    lines += [
        f"took:       {stats['duration_s']:.1f} s ({stats['pairs_per_s']} pairs/s)",
        f"pairs:      {OutputLayout(fs.FILES, output).pairs}",
        f"ledger:     {OutputLayout(fs.FILES, output).extract_ledger}",
    ]
    return "\n".join(lines)
