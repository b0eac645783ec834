"""``paircurate retry-failed``: download again only what failed for a passing reason.

A finished run records its options in DIR/stats.json. From them the same job is
rebuilt and run again with ``retry_failed`` on: the fetch options are the same,
so every chunk is found committed under the same fingerprint, and Fetch
downloads only the rows whose reason is retryable (timeouts, 5xx, 429,
connection errors) and merges them into the raw shard. Decide and Write then
run as usual, so shards, ledger, sizes.json and stats.json are those of the
merged result; a user need not download the whole job again.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.options import option_flags
from paircurate.pipeline.run import run_job
from paircurate.schemas.config import ConfigError, JobConfig, config_from_options
from paircurate.transforms.output.store import OutputLayout

log = logging.getLogger(__name__)


def stored_config(output: str) -> JobConfig:
    """The configuration of the finished run in ``output``, from its stats.json."""
    path = OutputLayout(fs.FILES, output).stats_json
    if not fs.exists(path):
        raise ConfigError(
            f"--output: {path} not found; retry-failed needs the folder of a finished run "
            "(an interrupted run resumes by running `paircurate run` again with its options)"
        )
    try:
        options = json.loads(fs.read_bytes(path))["options"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"--output: {path} has no run options to retry ({error!r})") from None
    return config_from_options(options)


def check_beam_args(beam_args: list[str]) -> None:
    """Refuse our own options: the retry must use the stored ones, or nothing would match."""
    given = [arg.split("=", 1)[0] for arg in beam_args if arg.startswith("--")]
    clashes = sorted(set(given) & option_flags())
    if clashes:
        raise ConfigError(
            f"retry-failed reuses the options stored in DIR/stats.json; {', '.join(clashes)} "
            "would change them: start a new run with `paircurate run` instead"
        )


def retry_failed(output: str, beam_args: list[str] = ()) -> dict:
    """Rerun the job in ``output`` retrying its retryable failures; returns the new stats."""
    check_beam_args(list(beam_args))
    fs.configure(list(beam_args))  # object-store options, before stats.json is read
    config = stored_config(output)
    config = dataclasses.replace(
        config, output=dataclasses.replace(config.output, output=output, retry_failed=True)
    )
    stats = run_job(config, list(beam_args))
    counts = stats.get("retry") or {}
    if counts.get("rows") is None:
        log.info("retry-failed: done (this runner reports no counters of retried rows)")
    else:
        log.info(
            "retry-failed: %d failed rows downloaded again, %d of them now succeed",
            counts["rows"], counts["recovered"],
        )  # fmt: skip
    return stats
