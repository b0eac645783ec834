"""Write ``DIR/report.html``: the dataset quality report of a finished run.

``paircurate report DIR`` calls ``write_report``, and so do ``run``, ``demo``
and ``retry-failed`` when the job is done (``report_after_run``). The report
only reads the outputs; a report that fails leaves them as they are, so it can
be made again later with ``paircurate report DIR``.
"""

from __future__ import annotations

import logging
import time

from paircurate.pipeline import filesystem as fs
from paircurate.report.aggregates import collect
from paircurate.report.data import ReportInputError
from paircurate.report.page import render
from paircurate.schemas.config import ConfigError
from paircurate.transforms.output.store import REPORT_NAME, OutputLayout  # noqa: F401 - callers find the page by it

log = logging.getLogger(__name__)


def write_report(output_dir: str, with_images: bool = True) -> str:
    """Build the report of the run in ``output_dir``; returns its path.

    The outputs are read and the page written through the job's filesystem
    layer (``fs.FILES``). Raises ConfigError when the folder holds no run outputs.
    """
    started = time.perf_counter()
    try:
        report = collect(output_dir, with_images=with_images, files=fs.FILES)
    except ReportInputError as error:
        raise ConfigError(str(error)) from error
    page = render(report).encode("utf-8")
    path = OutputLayout(fs.FILES, output_dir).report_html
    fs.write_bytes(path, page)
    log.info(
        "report: %s (%.1f MB, %d ledger rows, %.1f s)",
        path,
        len(page) / 1e6,
        report.funnel.rows,
        time.perf_counter() - started,
    )
    return path


def report_after_run(output_dir: str) -> str | None:
    """The report at the end of a job: its path, or None after logging why it failed.

    The job's outputs are complete and stay as they are; the caller decides the
    exit status.
    """
    try:
        return write_report(output_dir)
    except Exception:  # noqa: BLE001 - any failure here must not hide the finished run
        log.exception(
            "the run finished and its outputs are in %s, but its report failed; "
            "make it again with: paircurate report %s",
            output_dir,
            output_dir,
        )
        return None


def add_to_runs_table(folder: str, stats: dict) -> str | None:
    """Add the finished run's row to the runs table in ``folder``: the new file, or None.

    A failure is logged with the command that adds the row again; the run's
    outputs stay as they are, and the caller decides the exit status.
    """
    from paircurate.report.runs_table import append_run

    output = stats["options"]["output"]["output"]
    try:
        path = append_run(fs.FILES, folder, stats, output)
    except Exception:  # noqa: BLE001 - any failure here must not hide the finished run
        log.exception(
            "the run finished and its outputs are in %s, but its row could not be added to the "
            "runs table %s; add it with: paircurate report %s --runs-table %s",
            output,
            folder,
            output,
            folder,
        )
        return None
    log.info("runs table: %s", path)
    return path


COMPARISON_NAME = "compare.html"


def write_comparison(dir_a: str, dir_b: str, path: str = "", with_images: bool = True) -> str:
    """Write the page comparing the runs in ``dir_a`` and ``dir_b`` (default: in ``dir_b``).

    Raises ConfigError when a folder holds no run outputs.
    """
    from paircurate.report.compare import compare
    from paircurate.report.compare_page import render_comparison

    started = time.perf_counter()
    try:
        comparison = compare(dir_a, dir_b, files=fs.FILES, with_images=with_images)
    except ReportInputError as error:
        raise ConfigError(str(error)) from error
    page = render_comparison(comparison).encode("utf-8")
    path = path or fs.join(dir_b, COMPARISON_NAME)
    fs.write_bytes(path, page)
    log.info(
        "comparison: %s (%.1f MB, %.1f s)", path, len(page) / 1e6, time.perf_counter() - started
    )
    return path
