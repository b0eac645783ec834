from __future__ import annotations

import io
import logging

import pytest

from paircurate.pipeline.progress import (
    ProgressBoard,
    format_board,
    format_duration,
    format_stage,
    report_progress,
)


def test_stage_line_has_counts_rate_and_eta() -> None:
    assert format_stage("fetch", 100, 400, 20.0) == (
        "fetch 100/400 rows (25%), 5.0 rows/s, ETA 1 min 0 s"
    )


def test_a_finished_stage_says_done_and_a_new_one_has_no_rate() -> None:
    assert format_stage("score", 250, 250, 10.0) == "score 250/250 rows (100%), 25.0 rows/s, done"
    assert format_stage("write", 0, 3000, 0.5) == "write 0/3,000 rows (0%)"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (59, "59 s"), (125, "2 min 5 s"), (7300, "2 h 1 min")]
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_board_shows_every_stage_in_job_order_earlier_done_ones_short() -> None:
    snapshot = [("read", 1000, 1000, 2.0), ("fetch", 300, 990, 60.0)]
    assert format_board(snapshot) == (
        "read 1,000 done | fetch 300/990 rows (30%), 5.0 rows/s, ETA 2 min 18 s"
    )


def test_board_counts_rows_per_stage_and_stops_the_clock_when_done() -> None:
    board = ProgressBoard()
    board.enter("fetch", 10)
    board.enter("read", 4)
    board.finish("read", 4)
    board.finish("fetch", 3)
    (read, fetch) = board.snapshot(now=1e12)
    assert read[:3] == ("read", 4, 4) and read[3] < 60  # busy until its last row, not now
    assert fetch[:3] == ("fetch", 3, 10) and fetch[3] > 1e6  # still running: until now


def test_reporter_logs_lines_where_stderr_is_no_terminal(caplog) -> None:
    board = ProgressBoard()
    with caplog.at_level(logging.INFO, "paircurate"):
        with report_progress(board, stream=io.StringIO(), every_s=60):
            board.enter("write", 5)
            board.finish("write", 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "paircurate.pipeline.progress"]
    assert len(lines) == 1
    assert lines[0].startswith("progress: write 5/5 rows (100%), ") and lines[0].endswith(", done")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reporter_rewrites_one_line_on_a_terminal(caplog) -> None:
    board, stream = ProgressBoard(), Terminal()
    with caplog.at_level(logging.INFO, "paircurate"):
        with report_progress(board, stream=stream, every_s=60):
            board.enter("read", 2)
            board.finish("read", 2)
    assert stream.getvalue().startswith("\rread 2/2 rows (100%)")
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1
    assert not [r for r in caplog.records if r.name == "paircurate.pipeline.progress"]
