"""paircurate's Extract step against cc2dataset, on the same WAT files.

Data: a synthetic crawl (``synthweb.crawl``: pages of the synthetic web with
their lazy-loaded, srcset and <picture> images, spacers, trackers, data: URIs,
junk and repeats; WAT records with 30 navigation links each, as real ones have
more links than images), ``--pages`` pages in ``--files`` WAT files, written
once to ``--data`` (default ~/.cache/paircurate/bench-extract/).

Contenders, alternating within each of ``--runs`` rounds, each on every core:

* ours: ``paircurate extract`` on the WAT paths list, Beam's FnApiRunner with
  one worker process per core (``--direct_running_mode=multi_processing``),
  writing its pairs and extract ledger as Parquet;
* anchor: cc2dataset 1.5.0 in its documented configuration, PySpark local
  mode on every core (``bench/cc2dataset_run.py``: its own functions, the file
  list given instead of Common Crawl's index), with its global dedup and
  Parquet output. It lives in its own venv,
  ``~/.cache/paircurate/cc2dataset-venv``, which the bench creates with
  ``python -m venv`` and ``pip install cc2dataset==1.5.0`` where missing
  (Java 17 runs its PySpark 4).

Reported: each one's wall time and pairs (median of the runs and the range),
pairs per second per core, ``ratio`` (the anchor's median wall time over ours,
on the same files: the goal is 2 or more), the peak resident memory of each
one's process tree (sampled every 0.1 s: the driver, JVM and Python workers;
the launcher and its workers), and the agreement of the two pair sets, by
(url, alt) with alt entity-decoded and whitespace collapsed, the differences
broken down by the extract ledger's reasons. ``--fault-files`` more files
with the crawl's faults (a truncated and a damaged member, a WAT record whose
JSON does not parse) are read once by each, untimed, to count the pairs each
loses against the truth.

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import descendants  # noqa: E402

CACHE = Path.home() / ".cache" / "paircurate"
ANCHOR_VENV = CACHE / "cc2dataset-venv"
ANCHOR_PACKAGE = "cc2dataset==1.5.0"
ANCHOR_SCRIPT = Path(__file__).resolve().parent / "cc2dataset_run.py"
REPO = Path(__file__).resolve().parents[1]


def anchor_python() -> Path:
    """The anchor venv's Python, created and filled on first use."""
    python = ANCHOR_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import cc2dataset, pyspark"], capture_output=True)
    if probe.returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", ANCHOR_PACKAGE], check=True)
    return python


def write_data(folder: Path, pages: int, files: int, fault_files: int) -> dict:
    """The crawl (clean) and the faulty files, written once per size."""
    from paircurate.synthweb import SyntheticWeb, WebMix
    from paircurate.synthweb.crawl import CrawlMix, write_crawl

    marker = folder / "done.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    per_page = 8
    web = SyntheticWeb(pages * per_page, seed=21, mix=WebMix())
    clean = write_crawl(
        web, "http://images.test", str(folder / "clean"), files, 21, CrawlMix(faults=False)
    )
    faulty_web = SyntheticWeb(fault_files * 200 * per_page, seed=22, mix=WebMix())
    faulty = write_crawl(faulty_web, "http://images.test", str(folder / "faulty"), fault_files, 22)
    facts = {
        "clean": [*clean.wat_files], "faulty": [*faulty.wat_files], "faulty_truth": faulty.truth,
        "bytes": sum(os.path.getsize(p) for p in clean.wat_files),
    }  # fmt: skip
    marker.write_text(json.dumps(facts))
    return facts


class PeakMemory:
    """The peak summed RSS of a process and everything under it, sampled in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak_mb, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _rss_mb(self, pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = sum(self._rss_mb(pid) for pid in [self.pid, *descendants(self.pid)])
            self.peak_mb = max(self.peak_mb, total)
            time.sleep(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mb, 1)


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak MB of the process tree, stdout) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    memory = PeakMemory(process.pid)
    out, err = process.communicate()
    peak = memory.stop()
    if process.returncode:
        raise RuntimeError(f"{command[:3]} failed ({process.returncode}):\n{err.decode()[-3000:]}")
    return time.perf_counter() - started, peak, out.decode()


def run_ours(files: list[str], output: Path, cores: int) -> tuple[float, float]:
    listing = output.parent / "ours.paths"
    listing.write_text("".join(f"{path}\n" for path in files))
    command = [
        str(Path(sys.executable).parent / "paircurate"), "extract", "--input", str(listing),
        "--input-format", "wat", "--output", str(output),
        f"--direct_num_workers={cores}", "--direct_running_mode=multi_processing",
    ]  # fmt: skip
    seconds, peak, _ = timed(command)
    return seconds, peak


def run_anchor(
    python: Path, files: list[str], output: Path, cores: int
) -> tuple[float, float, int]:
    env = {**os.environ, "PYSPARK_PYTHON": str(python), "PYSPARK_DRIVER_PYTHON": str(python)}
    command = [str(python), str(ANCHOR_SCRIPT), str(output), str(cores), "8", *files]
    seconds, peak, out = timed(command, env)
    return seconds, peak, json.loads(out.strip().splitlines()[-1])["pairs"]


def normal(alt: str) -> str:
    return " ".join(html.unescape(alt).split())


def pair_sets(ours: Path, anchor: Path) -> tuple[set, set, list[dict]]:
    mine = {(r["url"], r["caption"]) for r in pq.read_table(ours / "pairs").to_pylist()}
    theirs = {
        (r["url"], normal(r["alt"]))
        for r in pq.read_table(anchor, columns=["url", "alt"]).to_pylist()
    }
    ledger = pq.read_table(
        ours / "extract_ledger", columns=["url", "caption", "reason"]
    ).to_pylist()
    return mine, theirs, ledger


def why_not_ours(pair: tuple[str, str], reasons: dict, no_url: dict) -> str:
    """Our extract ledger's reason for a pair cc2dataset keeps and we do not."""
    url, alt = pair
    if pair in reasons:
        return reasons[pair]
    if (html.unescape(url), alt) in reasons:  # cc2dataset keeps WAT's raw "&amp;" in URLs
        return reasons[(html.unescape(url), alt)] + " (its URL keeps &amp;)"
    if (html.unescape(url), alt) in no_url or alt in no_url:
        return no_url.get(alt, "not in our ledger")
    return "not in our ledger"


def agreement(ours: Path, anchor: Path) -> dict:
    """How far the two pair sets agree, and why they differ, from our extract ledger."""
    mine, theirs, ledger = pair_sets(ours, anchor)
    reasons = {(r["url"], r["caption"] or ""): r["reason"] for r in ledger if r["reason"]}
    # Candidates we dropped before they had a URL (data:, other schemes, unparseable URLs)
    # are found by their alt: cc2dataset keeps what urljoin leaves starting with http.
    no_url = {r["caption"] or "": r["reason"] for r in ledger if r["reason"] and not r["url"]}
    only_theirs = Counter(why_not_ours(pair, reasons, no_url) for pair in theirs - mine)
    theirs_urls = {url for url, _ in theirs}
    only_ours = Counter(
        "same url, other alt" if url in theirs_urls else "url resolved otherwise"
        for url, _ in mine - theirs
    )
    return {
        "both": len(mine & theirs), "ours_only": len(mine - theirs),
        "anchor_only": len(theirs - mine),
        "jaccard": round(len(mine & theirs) / len(mine | theirs), 4) if mine | theirs else 1.0,
        "anchor_only_by_our_reason": dict(only_theirs.most_common()),
        "ours_only_by_kind": dict(only_ours.most_common()),
    }  # fmt: skip


def faults(data: dict, python: Path, cores: int, work: Path) -> dict:
    """Pairs found on the faulty files by each, against the truth's usable pairs."""
    truth = pq.read_table(data["faulty_truth"]).to_pylist()
    wanted = {(t["url"], t["caption"]) for t in truth if t["view"] == "wat" and t["reason"] is None}
    kept = {
        (t["url"], t["caption"])
        for t in truth
        if t["view"] == "wat" and t["reason"] is None and t["record_reason"] is None
    }
    run_ours(data["faulty"], work / "ours-faulty", cores)
    error = None
    try:
        run_anchor(python, data["faulty"], work / "anchor-faulty", cores)
    except RuntimeError as failure:  # e.g. "RDD is empty" when every file was lost
        error = str(failure).strip().splitlines()[-1]
    mine = {
        (r["url"], r["caption"]) for r in pq.read_table(work / "ours-faulty" / "pairs").to_pylist()
    }
    theirs = set()
    if error is None:
        rows = pq.read_table(work / "anchor-faulty", columns=["url", "alt"]).to_pylist()
        theirs = {(r["url"], normal(r["alt"])) for r in rows}
    return {
        "files": len(data["faulty"]), "truth_pairs": len(wanted), "in_readable_records": len(kept),
        "ours": len(mine & wanted), "anchor": len(theirs & wanted), "anchor_error": error,
    }  # fmt: skip


def summary(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=16000, help="pages in the clean WAT files")
    parser.add_argument("--files", type=int, default=8, help="clean WAT files")
    parser.add_argument("--fault-files", type=int, default=2, help="WAT files with faults")
    parser.add_argument("--runs", type=int, default=3, help="alternating rounds")
    parser.add_argument("--data", type=Path, default=None, help="folder of the bench's crawl")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    data_folder = args.data or CACHE / f"bench-extract-{args.pages}-{args.files}-{args.fault_files}"
    data = write_data(data_folder, args.pages, args.files, args.fault_files)
    python = anchor_python()
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    times: dict[str, list[float]] = {"ours": [], "anchor": []}
    peaks: dict[str, list[float]] = {"ours": [], "anchor": []}
    pairs: dict[str, int] = {}
    try:
        for round_number in range(args.runs):
            ours_out, anchor_out = work / f"ours-{round_number}", work / f"anchor-{round_number}"
            seconds, peak = run_ours(data["clean"], ours_out, cores)
            times["ours"].append(seconds)
            peaks["ours"].append(peak)
            pairs["ours"] = json.loads((ours_out / "stats.json").read_text())["extract"]["pairs"]
            seconds, peak, pairs["anchor"] = run_anchor(python, data["clean"], anchor_out, cores)
            times["anchor"].append(seconds)
            peaks["anchor"].append(peak)
        agreed = agreement(work / "ours-0", work / "anchor-0")
        faulty = faults(data, python, cores, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    ratios = [a / o for a, o in zip(times["anchor"], times["ours"], strict=True)]
    result = {
        "bench": "extract", "input": "wat", "files": args.files, "pages": args.pages,
        "wat_bytes": data["bytes"], "cores": cores, "runs": args.runs,
        "seconds": {name: summary(values) for name, values in times.items()},
        "pairs": pairs,
        "pairs_per_s_per_core": {
            name: round(pairs[name] / median[name] / cores, 1) for name in ("ours", "anchor")
        },
        "ratio": round(median["anchor"] / median["ours"], 2),
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
        "peak_rss_mb": {name: max(values) for name, values in peaks.items()},
        "agreement": agreed,
        "faulty_files": faulty,
        "anchor": f"{ANCHOR_PACKAGE}, PySpark local[{cores}], 8 GB driver",
        "load": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
