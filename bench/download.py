"""Download + resize throughput against img2dataset, on real photos behind a slow local server.

A server process serves the real photos of ../shared/data/openimages_ccby, each
under many URLs (``?n=<i>``), with 20-50 ms of latency per request, as a remote
image host would. Each measured run is a fresh child process, so that its peak
memory is its own; the two contenders alternate (ours, img2dataset, ours, ...):

- ours: ``fetch_many`` with a ``Downloader``, writing the images to a tar, as
  one Fetch worker of the local runner does by default: the downloads in one
  process, the image work in an ``ImagePool`` (one process per core, plus one);
- ours_threads: the same with ``--image-processes 0``, the image work in the
  download threads (what each worker does on a runner with a worker per core);
- anchor: ``img2dataset.download`` on the same URL list, same thread count,
  image size, resize mode, JPEG quality, webdataset output, one process;
- anchor_procs: img2dataset with one process per core, the same threads in all.

Both run with their defaults otherwise, except that the per-host cap is raised to
the thread count (every URL here is on one host, standing in for many) and
img2dataset's EXIF extraction is off (we do not extract EXIF either).

    python bench/download.py --images 3000 --threads 64 --runs 3

Last line: one JSON object (bench convention). ``ratio`` compares whole calls, as
a user meets them: img2dataset's includes its fixed start-up (a spawned worker
process, a logger process, sharding the input), several seconds that weigh less
on a longer run. ``anchor_in_shard`` and ``ratio_in_shard`` take img2dataset's own
shard timing instead (download, resize and write of the shard only): the stricter
comparison, to quote beside ``ratio``. ``ratio_procs_in_shard`` sets ours
against img2dataset using every core too (its shards' span, start-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_data import DATA  # noqa: E402 - bench scripts run as files, not as a package

from paircurate.transforms.crawl.fetch_many import usable_cores  # noqa: E402
from paircurate.transforms.crawl.image_pool import pool_size  # noqa: E402

PHOTOS = DATA / "openimages_ccby"
CONTENDERS = ("ours", "anchor", "ours_threads", "anchor_procs")


# ---------------------------------------------------------------- the image host


def _latency(number: int) -> float:
    """20-50 ms, fixed per URL, so that every contender meets the same delays."""
    return 0.020 + (number * 7919 % 31) / 1000


async def _serve_connection(reader, writer, photos: list[bytes]) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            number = int(target.rsplit("n=", 1)[1]) if "n=" in target else 0
            await asyncio.sleep(_latency(number))
            body = photos[number % len(photos)]
            close = b"connection: close" in head.lower()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n%s\r\n"
                % (len(body), b"Connection: close\r\n" if close else b"")
            )
            writer.write(body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
        pass
    finally:
        writer.close()


def _host(port_out: multiprocessing.Queue) -> None:
    photos = [path.read_bytes() for path in sorted(PHOTOS.glob("*.jpg"))]

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, photos), "127.0.0.1", 0, backlog=2048
        )
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start_host() -> tuple[multiprocessing.Process, int]:
    if not any(PHOTOS.glob("*.jpg")):
        raise SystemExit(f"no photos in {PHOTOS}: this benchmark needs the shared data folder")
    port_out: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_host, args=(port_out,), daemon=True)
    process.start()
    return process, port_out.get(timeout=30)


# ---------------------------------------------------------------- the contenders


def _tree_rss_mb(root: int) -> float:
    """Memory of ``root`` and all its descendants (summed PSS), from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(_pss_kb(pid) for pid in tree) / 1024


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class PeakSampler(threading.Thread):
    """Samples this process tree's memory every 50 ms: img2dataset works in child processes."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(os.getpid()))

    def stop(self) -> float:
        self._done.set()
        self.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return max(self.peak_mb, own)


def run_ours(urls: list[str], threads: int, out_dir: str, image_processes: int) -> dict:
    from paircurate.schemas.config import DownloadConfig, ImageConfig
    from paircurate.transforms.crawl.download import Downloader
    from paircurate.transforms.crawl.fetch_many import fetch_many
    from paircurate.transforms.crawl.image_pool import ImagePool
    from paircurate.transforms.output.shards import TarWriter

    config = DownloadConfig(
        download_threads=threads, max_per_host=threads, allow_private_networks=True
    )
    image = ImageConfig(
        image_size=256, resize_mode="border", encode_format="jpg", encode_quality=95
    )
    started = time.perf_counter()
    downloader = Downloader(config)
    pool = ImagePool(image_processes) if image_processes else None
    ok = 0
    with open(os.path.join(out_dir, "00000.tar"), "wb") as stream:
        tar = TarWriter(stream)  # the Fetch stage's own writer
        pairs = ((f"{i:09d}", url) for i, url in enumerate(urls))
        for result in fetch_many(pairs, downloader, image, threads, pool):
            if result.image is not None:
                ok += 1
                tar.add(f"{result.uid}.jpg", result.image)
                tar.add(f"{result.uid}.json", json.dumps(result.measurements).encode())
        tar.close()
    downloader.close()
    if pool is not None:
        pool.close()
    return {"seconds": time.perf_counter() - started, "ok": ok}


def run_anchor(url_file: str, threads: int, count: int, out_dir: str, processes: int) -> dict:
    """img2dataset with ``threads`` in all: one shard per process, so that each works at once."""
    import img2dataset

    started = time.perf_counter()
    img2dataset.download(
        url_list=url_file, input_format="txt", output_folder=out_dir, output_format="webdataset",
        image_size=256, resize_mode="border", encode_format="jpg", encode_quality=95,
        thread_count=threads // processes, processes_count=processes,
        number_sample_per_shard=-(-count // processes),
        extract_exif=False, retries=0, timeout=10,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    shards = [json.loads(path.read_text()) for path in Path(out_dir).glob("*_stats.json")]
    shards = [stats for stats in shards if "start_time" in stats]
    span = max(s["end_time"] for s in shards) - min(s["start_time"] for s in shards)
    ok = sum(stats["successes"] for stats in shards)
    return {"seconds": seconds, "ok": ok, "shard_seconds": span}


def worker(args: argparse.Namespace) -> None:
    urls = Path(args.url_file).read_text().split()
    sampler = PeakSampler()
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="bench-download-") as out_dir:
        cores = usable_cores()
        if args.worker == "ours":
            measured = run_ours(urls, args.threads, out_dir, pool_size(cores))
        elif args.worker == "ours_threads":
            measured = run_ours(urls, args.threads, out_dir, 0)
        else:
            processes = cores if args.worker == "anchor_procs" else 1
            measured = run_anchor(args.url_file, args.threads, len(urls), out_dir, processes)
    measured["peak_mb"] = sampler.stop()
    print(json.dumps(measured))


# ---------------------------------------------------------------- the driver


def measure(kind: str, url_file: str, threads: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--url-file", url_file,
         "--threads", str(threads)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--url-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    host, port = start_host()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-download-urls-") as folder:
            url_file = os.path.join(folder, "urls.txt")
            names = sorted(path.name for path in PHOTOS.glob("*.jpg"))
            lines = (
                f"http://127.0.0.1:{port}/photos/{names[i % len(names)]}?n={i}\n"
                for i in range(args.images)
            )
            Path(url_file).write_text("".join(lines))
            report(args, url_file)
    finally:
        host.terminate()
        host.join(timeout=5)


def report(args: argparse.Namespace, url_file: str) -> None:
    runs: dict[str, list[dict]] = {kind: [] for kind in CONTENDERS}
    for run in range(args.runs):
        for kind in CONTENDERS:
            measured = measure(kind, url_file, args.threads)
            measured["images_per_s"] = measured["ok"] / measured["seconds"]
            runs[kind].append(measured)
            print(f"run {run + 1} {kind:6}: {json.dumps(measured)}", flush=True)
    for kind, measured in runs.items():
        if any(m["ok"] != args.images for m in measured):
            print(f"warning: {kind} did not fetch every image: {[m['ok'] for m in measured]}")

    def median_rate(kind: str, seconds: str = "seconds") -> float:
        return statistics.median(m["ok"] / m[seconds] for m in runs[kind])

    def peak(kind: str) -> float:
        return round(max(m["peak_mb"] for m in runs[kind]), 1)

    ours, anchor = median_rate("ours"), median_rate("anchor")
    threads_only = median_rate("ours_threads")
    in_shard = median_rate("anchor", "shard_seconds")
    procs_in_shard = median_rate("anchor_procs", "shard_seconds")
    print(json.dumps({
        "bench": "download", "ours": round(ours, 1), "anchor": round(anchor, 1),
        "unit": "images/s", "ratio": round(ours / anchor, 3),
        "ours_peak_mb": peak("ours"), "anchor_peak_mb": peak("anchor"),
        "images": args.images, "threads": args.threads, "cores": usable_cores(),
        "anchor_in_shard": round(in_shard, 1), "ratio_in_shard": round(ours / in_shard, 3),
        "ours_threads": round(threads_only, 1),
        "ratio_threads_in_shard": round(threads_only / in_shard, 3),
        "ours_threads_peak_mb": peak("ours_threads"),
        "anchor_procs_in_shard": round(procs_in_shard, 1),
        "ratio_procs_in_shard": round(ours / procs_in_shard, 3),
        "anchor_procs_peak_mb": peak("anchor_procs"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
