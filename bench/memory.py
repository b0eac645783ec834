"""A process's own peak memory, for the benches that report one.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is not it in a process that a
bench starts: Linux carries the high-water mark across ``exec``, so a child
started by ``subprocess`` or a spawned ``multiprocessing`` process reports
at least its parent's peak at that moment (a driver that held 1.5 GB makes
every later child report 1.5 GB). ``VmHWM`` in ``/proc/self/status`` belongs
to the process's current memory map only, and writing 5 to
``/proc/self/clear_refs`` starts it again from the current size (Linux 4.0
and later), for a measurement inside a forked process.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's peak resident set size since it started or since ``reset_peak``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def reset_peak() -> None:
    """Start this process's peak over from its current resident set size."""
    Path("/proc/self/clear_refs").write_text("5")


BENCH = Path(__file__).resolve().parent
# First line of a ``python -c`` child's code, so that it can import from bench/.
IMPORTABLE = f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
