"""A process's own peak memory, and the processes under it, for the benches that report them.

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


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, from any of its threads (a pool started by a
    worker thread is that thread's child, not the main thread's)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``: children, theirs, and so on."""
    try:
        below = children(pid)
    except OSError:
        return []
    return below + [deeper for child in below for deeper in descendants(child)]


BENCH = Path(__file__).resolve().parent
# First line of a ``python -c`` child's code, so that it can import from bench/.
IMPORTABLE = f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
