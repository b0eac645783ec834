"""Progress of a running job: rows done of rows in, rate and ETA, per stage.

Each stage's DoFn tells the process-wide ``BOARD`` how many rows reached it (``enter``)
and how many it finished (``finish``). While the job runs, ``report_progress`` shows the
board: one line rewritten in place when stderr is a terminal, a log line every
``every_s`` seconds elsewhere. The board sees the stages that run in this process: all of
them with the local runner in one process (the default); on Dataflow, Spark or Flink, or
with ``--direct_running_mode=multi_processing``, the workers' own log lines (one per
fetched chunk) tell the progress instead.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

log = logging.getLogger(__name__)

STAGES = ("read", "captions", "fetch", "score", "write")


@dataclass
class StageProgress:
    rows_in: int = 0
    rows_done: int = 0
    started: float | None = None
    last: float | None = None


@dataclass
class ProgressBoard:
    """Rows in and done per stage, safe to update from several threads."""

    stages: dict[str, StageProgress] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, stage: str, rows: int) -> None:
        with self.lock:
            progress = self.stages.setdefault(stage, StageProgress())
            progress.rows_in += rows
            if progress.started is None:
                progress.started = time.monotonic()

    def finish(self, stage: str, rows: int) -> None:
        with self.lock:
            progress = self.stages.setdefault(stage, StageProgress())
            progress.rows_done += rows
            progress.last = time.monotonic()
            if progress.started is None:
                progress.started = progress.last

    def snapshot(self, now: float) -> list[tuple[str, int, int, float]]:
        """(stage, rows done, rows in, seconds it has been busy), in job order: from its
        first row to now, or to its last row once every row in is done."""
        with self.lock:
            return [
                (name, p.rows_done, p.rows_in, _busy_until(p, now) - p.started)
                for name, p in sorted(self.stages.items(), key=lambda item: _order(item[0]))
                if p.started is not None
            ]

    def clear(self) -> None:
        with self.lock:
            self.stages.clear()


def _busy_until(progress: StageProgress, now: float) -> float:
    finished = progress.rows_done >= progress.rows_in and progress.last is not None
    return progress.last if finished else now


def _order(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


BOARD = ProgressBoard()


def format_duration(seconds: float) -> str:
    """12 -> "12 s", 125 -> "2 min 5 s", 7300 -> "2 h 1 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_stage(stage: str, done: int, rows_in: int, elapsed_s: float) -> str:
    """One stage's progress: "fetch 137/276 rows (50%), 6.1 rows/s, ETA 23 s".

    The rate is rows done per second since the stage's first row; the ETA is the rows
    still in the stage at that rate ("done" once every row in is done).
    """
    share = f" ({done / rows_in:.0%})" if rows_in else ""
    text = f"{stage} {done:,}/{rows_in:,} rows{share}"
    if done == 0 or elapsed_s <= 0:
        return text
    rate = done / elapsed_s
    text += f", {rate:,.1f} rows/s"
    remaining = rows_in - done
    return text + (f", ETA {format_duration(remaining / rate)}" if remaining > 0 else ", done")


def format_board(snapshot: list[tuple[str, int, int, float]]) -> str:
    """Every stage of ``BOARD.snapshot``; stages done before the last one, in short."""
    parts = []
    for index, (stage, done, rows_in, elapsed_s) in enumerate(snapshot):
        if done >= rows_in and index < len(snapshot) - 1:
            parts.append(f"{stage} {done:,} done")
        else:
            parts.append(format_stage(stage, done, rows_in, elapsed_s))
    return " | ".join(parts)


@contextmanager
def report_progress(
    board: ProgressBoard = BOARD,
    stream: TextIO | None = None,
    every_s: float | None = None,
) -> Iterator[None]:
    """Show ``board`` while the body runs: an updating line on a terminal, else log lines."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    every_s = every_s if every_s is not None else (0.5 if terminal else 10.0)
    board.clear()
    stop = threading.Event()
    shown = {"text": "", "width": 0}

    def show() -> None:
        text = format_board(board.snapshot(time.monotonic()))
        if not text or text == shown["text"]:
            return
        shown["text"] = text
        if terminal:
            text = text[-(shutil.get_terminal_size().columns - 1) :]
            stream.write("\r" + text.ljust(shown["width"]))
            stream.flush()
            shown["width"] = len(text)
        else:
            log.info("progress: %s", text)

    def clear_line(record: logging.LogRecord) -> bool:
        """Before a log line reaches the terminal, wipe the progress line it would follow."""
        if shown["width"]:
            stream.write("\r" + " " * shown["width"] + "\r")
            shown["width"], shown["text"] = 0, ""
        return True

    handlers = [h for h in logging.getLogger().handlers if terminal]
    for handler in handlers:
        handler.addFilter(clear_line)

    def loop() -> None:
        while not stop.wait(every_s):
            show()

    thread = threading.Thread(target=loop, name="paircurate-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        show()
        for handler in handlers:
            handler.removeFilter(clear_line)
        if terminal and shown["width"]:
            stream.write("\n")
            stream.flush()
