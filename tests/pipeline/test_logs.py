"""What a newcomer's demo prints: our own lines, and other libraries' INFO only with --verbose."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from paircurate.pipeline.logs import is_own_or_important

INFO = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO (.*)$")
NAMED = re.compile(r"^(\S+): (.*)$")  # --verbose names each line's logger


def demo_log(tmp_path, *extra: str) -> list[str]:
    """The text after the level of every INFO line a small demo prints."""
    command = [sys.executable, "-m", "paircurate.pipeline.cli", "demo", "--pairs", "16"]
    command += ["--output", str(tmp_path / "demo"), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    return [m.group(1) for m in map(INFO.match, done.stderr.splitlines()) if m]


@pytest.mark.slow
def test_third_party_info_lines_only_with_verbose(tmp_path):
    verbose = [NAMED.match(line).groups() for line in demo_log(tmp_path / "v", "--verbose")]
    theirs = {message for name, message in verbose if not name.startswith("paircurate")}
    # open_clip's model loading and Beam's proxy servers, at least.
    assert any("model config" in message for message in theirs)
    assert any("proxy" in message for message in theirs)
    quiet = demo_log(tmp_path / "quiet")
    assert not theirs & set(quiet)
    assert any(line.startswith("synthetic web of 16 pairs") for line in quiet)
    assert any(line.startswith("progress: ") for line in quiet)
    assert any(line.startswith("chunk 00000: fetched") for line in quiet)


@pytest.mark.parametrize(
    ("name", "level", "shown"),
    [
        ("paircurate.pipeline.run", logging.INFO, True),
        ("paircurate", logging.DEBUG, True),
        ("root", logging.INFO, False),
        ("apache_beam.utils.multi_process_shared", logging.INFO, False),
        ("paircurate_other", logging.INFO, False),
        ("urllib3.connectionpool", logging.WARNING, True),
        ("root", logging.ERROR, True),
    ],
)
def test_only_our_records_or_warnings_pass_without_verbose(name, level, shown):
    record = logging.LogRecord(name, level, __file__, 1, "message", (), None)
    assert is_own_or_important(record) is shown
