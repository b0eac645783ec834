"""Download + resize throughput against img2dataset, on distinct web-sized images.

The images: ``--distinct`` (1,000 by default) distinct images made from the 18
real photos of ../shared/data/openimages_ccby (about 680 x 450 px each): a
random crop of 60-100 % of each side, mirrored half of the time, scaled so that
the longer side is 240-1,400 px, and encoded as JPEG (70 %: quality 70-95, a
fifth of them progressive), PNG (15 %, longer side at most 900 px; else JPEG)
or WebP (15 %, quality 75-90). They are generated once, seeded, and cached
under ``~/.cache/paircurate-bench/``. A server process serves them under
``--images`` URLs (2,000 by default; image ``n % distinct`` for URL ``n``), each
with its Content-Type and 20-50 ms of latency per request, as a remote image
host would.

Each measured run is a fresh child process; the contenders alternate within
each of ``--runs`` timed rounds, medians kept. Peak memory (the summed PSS of
a run's process tree, sampled every 50 ms from the driver) comes from one
more round of its own (``--memory-runs``): reading a process's
``smaps_rollup`` walks its whole memory map under the lock that its own
allocations need, so sampling slows the run it samples, and the more memory
the process holds the more (img2dataset's 1.9 GB far more than ours), which
would time the contenders unequally. The contenders:

- ours: one Fetch worker per core, as Dataflow, Flink, Spark and portable
  runs start them (and as img2dataset runs a process per core): each a
  process of its own with ``fetch_many``, a ``Downloader``, its share of the
  threads and of the URLs (a contiguous slice, as img2dataset's shards), the
  image work in its download threads, two images at once (``--image-processes
  0`` and ``--image-threads 2``, what the job chooses on those runners),
  writing its own tar; timed inside the work, from
  the first worker's start (its imports done, its downloader built) to the
  last worker's tar closed, as the anchor's shards are timed;
- ours_one_worker: one worker, as the local in-process runner runs Fetch by
  default: the downloads in one process, the image work in an ``ImagePool``
  (one process per core, plus one); timed from the moment its pool's
  processes are up to the last image in the tar, so its start-up (the fork
  server importing the image libraries, the pool's processes) is left out
  (``ours_one_worker_whole_call`` times the whole call);
- anchor: ``img2dataset.download`` with one process per core (its fastest
  configuration on this machine), the same threads in all, image size, resize
  mode, JPEG quality, webdataset output; timed inside its shards (the span from
  the first shard's start to the last shard's end, from its own stats files),
  so its start-up (spawning workers, a logger process, sharding the input) is
  left out.

``ratio`` = ours / anchor, both a process per core; ``one_worker_ratio`` =
ours_one_worker / anchor; ``memory_ratio`` = our peak / the anchor's peak.
``*_cpu_ms_per_image``: CPU time (user + system) of each run's whole process
tree per image, start-up included (the anchor's in-shard timing leaves its
start-up out, its CPU cannot be split so). On a machine shared with other
work, throughput follows each side's share of the cores as much as its own
cost, and the CPU per image shows the cost alone.
With ``--context``, two more contenders explain the rest: ``ours_threads``
(one worker with the image work in its download threads: a single worker
without a pool) and ``anchor_one_process``
(img2dataset in one process, whole call and in-shard).

Both run with their defaults otherwise, except that the per-host cap is raised to
the thread count (every URL here is on one host, standing in for many) and
img2dataset's EXIF extraction is off (we do not extract EXIF either).

    python bench/download.py --images 2000 --threads 64 --runs 3

Last line: one JSON object (bench convention).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import children, descendants, peak_rss_mb  # noqa: E402 - bench scripts run as files, not as a package
from shared_data import DATA  # noqa: E402 - bench scripts run as files, not as a package

from paircurate.pipeline.crawl.fetch_chunks import PER_CORE_WORKER_IMAGE_THREADS  # noqa: E402
from paircurate.transforms.crawl.fetch_many import usable_cores  # noqa: E402
from paircurate.transforms.crawl.image_pool import pool_size  # noqa: E402

PHOTOS = DATA / "openimages_ccby"
CONTENDERS = ("ours", "ours_one_worker", "anchor")
CONTEXT = ("ours_threads", "anchor_one_process")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paircurate-bench"
CONTENT_TYPES = {".jpg": b"image/jpeg", ".png": b"image/png", ".webp": b"image/webp"}


# ---------------------------------------------------------------- the images


def _variant(photo, rng: random.Random) -> tuple[bytes, str]:
    """One web-sized image made from ``photo``: crop, mirror, scale, encode."""
    import io

    from PIL import Image, ImageOps

    width, height = photo.size
    crop_w, crop_h = round(width * rng.uniform(0.6, 1)), round(height * rng.uniform(0.6, 1))
    left, top = rng.randrange(width - crop_w + 1), rng.randrange(height - crop_h + 1)
    image = photo.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    kind = rng.choices(("jpg", "png", "webp"), (70, 15, 15))[0]
    longer = rng.randint(240, 900 if kind == "png" else 1400)
    factor = longer / max(image.size)
    image = image.resize(
        (max(1, round(image.width * factor)), max(1, round(image.height * factor))),
        Image.Resampling.LANCZOS,
    )
    out = io.BytesIO()
    if kind == "jpg":
        progressive = rng.random() < 0.2
        image.save(out, "JPEG", quality=rng.randint(70, 95), progressive=progressive)
    elif kind == "png":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, "WEBP", quality=rng.randint(75, 90), method=4)
    return out.getvalue(), kind


def distinct_images(count: int, seed: int = 0) -> list[Path]:
    """``count`` distinct generated images, made once and cached on disk."""
    from PIL import Image

    folder = CACHE / f"download-images-{count}-seed{seed}-v1"
    done = folder / "done.json"
    if done.is_file():
        return [folder / name for name in json.loads(done.read_text())]
    sources = sorted(PHOTOS.glob("*.jpg"))
    if not sources:
        raise SystemExit(f"no photos in {PHOTOS}: this benchmark needs the shared data folder")
    photos = [Image.open(path).convert("RGB") for path in sources]
    folder.mkdir(parents=True, exist_ok=True)
    names, seen = [], set()
    number = 0
    while len(names) < count:
        rng = random.Random(f"{seed}-{number}")
        body, kind = _variant(photos[number % len(photos)], rng)
        number += 1
        if body in seen:
            continue
        seen.add(body)
        name = f"{len(names):05d}.{kind}"
        (folder / name).write_bytes(body)
        names.append(name)
    done.write_text(json.dumps(names))
    return [folder / name for name in names]


# ---------------------------------------------------------------- the image host


def _latency(number: int) -> float:
    """20-50 ms, fixed per URL, so that every contender meets the same delays."""
    return 0.020 + (number * 7919 % 31) / 1000


async def _serve_connection(reader, writer, photos: list[tuple[bytes, bytes]]) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            number = int(target.rsplit("n=", 1)[1]) if "n=" in target else 0
            await asyncio.sleep(_latency(number))
            body, content_type = photos[number % len(photos)]
            close = b"connection: close" in head.lower()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
                % (content_type, len(body), b"Connection: close\r\n" if close else b"")
            )
            writer.write(body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
        pass
    finally:
        writer.close()


def _host(port_out: multiprocessing.Queue, paths: list[Path]) -> None:
    photos = [(path.read_bytes(), CONTENT_TYPES[path.suffix]) for path in paths]

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, photos), "127.0.0.1", 0, backlog=2048
        )
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start_host(paths: list[Path]) -> tuple[multiprocessing.Process, int]:
    port_out: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_host, args=(port_out, paths), daemon=True)
    process.start()
    return process, port_out.get(timeout=30)


# ---------------------------------------------------------------- the contenders


def _tree_rss_mb(root: int) -> float:
    """Memory of ``root`` and all its descendants (summed PSS), from /proc (Linux)."""
    return sum(_pss_kb(pid) for pid in [root, *descendants(root)]) / 1024


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
    """Samples a process tree's memory every 50 ms: img2dataset works in child processes.

    It runs in the driver, not in the measured process: a scan of /proc is
    Python work that, in our process, would hold the GIL that the download
    threads wait for, while img2dataset's main process only waits on its
    children.
    """

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(self.root))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb


def run_ours(
    urls: list[str],
    threads: int,
    out_dir: str,
    image_processes: int,
    shard: int = 0,
    image_threads: int = 0,
) -> dict:
    """One Fetch worker over ``urls``, writing shard ``shard``; ``start`` to ``end`` is its work.

    Without image processes, ``image_threads`` of its threads do image work at once
    (0: one per core), as ``--image-threads`` sets it.
    """
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
    start = time.time()  # the pool's processes are forked, their imports done
    ok = 0
    with open(os.path.join(out_dir, f"{shard:05d}.tar"), "wb") as stream:
        tar = TarWriter(stream)  # the Fetch stage's own writer
        pairs = ((f"{shard:04d}{i:05d}", url) for i, url in enumerate(urls))
        for result in fetch_many(pairs, downloader, image, threads, pool, image_threads):
            if result.image is not None:
                ok += 1
                tar.add(f"{result.uid}.jpg", result.image)
                tar.add(f"{result.uid}.json", json.dumps(result.measurements).encode())
        tar.close()
    end = time.time()  # the last image written, as a shard's end
    downloader.close()
    if pool is not None:
        pool.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "ok": ok, "work_seconds": end - start, "start": start, "end": end}


def run_ours_per_core(urls: list[str], threads: int, out_dir: str, workers: int) -> dict:
    """``workers`` Fetch workers in processes of their own, each with a slice of the URLs."""
    started = time.perf_counter()
    per_worker = -(-len(urls) // workers)
    slices = [urls[i * per_worker : (i + 1) * per_worker] for i in range(workers)]
    # Fresh interpreters, as a runner's workers are; they import what they need.
    with multiprocessing.get_context("spawn").Pool(workers) as processes:
        shards = processes.starmap(
            run_ours,
            [
                (part, threads // workers, out_dir, 0, i, PER_CORE_WORKER_IMAGE_THREADS)
                for i, part in enumerate(slices)
            ],
        )
        processes.close()
        processes.join()
    span = max(s["end"] for s in shards) - min(s["start"] for s in shards)
    ok = sum(s["ok"] for s in shards)
    return {"seconds": time.perf_counter() - started, "ok": ok, "work_seconds": span}


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
    with tempfile.TemporaryDirectory(prefix="bench-download-") as out_dir:
        cores = usable_cores()
        if args.worker == "ours":
            measured = run_ours_per_core(urls, args.threads, out_dir, cores)
        elif args.worker == "ours_one_worker":
            measured = run_ours(urls, args.threads, out_dir, pool_size(cores))
        elif args.worker == "ours_threads":
            measured = run_ours(urls, args.threads, out_dir, 0)
        else:
            processes = 1 if args.worker == "anchor_one_process" else cores
            measured = run_anchor(args.url_file, args.threads, len(urls), out_dir, processes)
    for span in ("start", "end"):  # one worker's bounds, for the workers' span above
        measured.pop(span, None)
    measured["own_peak_mb"] = peak_rss_mb()
    measured["live_children_cpu_s"] = _live_children_cpu_s()
    print(json.dumps(measured))


def _live_children_cpu_s() -> float:
    """CPU of this process's children still running, and of the children they reaped.

    Such a child (our image pool's fork server) ends after this process and is
    not reaped by it, so the driver's count of its children's CPU misses it.
    """
    total = 0.0
    for pid in children(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the driver


def _children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(kind: str, url_file: str, threads: int, sample_memory: bool) -> dict:
    """One run in a fresh process; ``cpu_s`` is the CPU of its whole process tree, start-up too.

    With ``sample_memory``, ``peak_mb`` is its tree's peak (and the run is not
    one to time); without, nothing reads its memory while it works.
    """
    before = _children_cpu_s()
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", kind, "--url-file", url_file,
         "--threads", str(threads)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sampler = PeakSampler(child.pid) if sample_memory else None
    if sampler is not None:
        sampler.start()
    stdout, stderr = child.communicate()
    sampled = sampler.stop() if sampler is not None else 0.0
    if child.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{stderr[-3000:]}")
    measured = json.loads(stdout.strip().splitlines()[-1])
    measured["cpu_s"] = round(_children_cpu_s() - before + measured.pop("live_children_cpu_s"), 2)
    own_peak = measured.pop("own_peak_mb")
    if sample_memory:
        measured["peak_mb"] = max(sampled, own_peak)
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="URLs to fetch")
    parser.add_argument("--distinct", type=int, default=1000, help="distinct images served")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3, help="timed rounds")
    parser.add_argument("--memory-runs", type=int, default=1, help="rounds sampling memory")
    parser.add_argument("--context", action="store_true", help="also run " + ", ".join(CONTEXT))
    parser.add_argument("--worker", choices=CONTENDERS + CONTEXT, help=argparse.SUPPRESS)
    parser.add_argument("--url-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.memory_runs < 1:
        parser.error("--runs and --memory-runs must be at least 1")
    if args.worker:
        worker(args)
        return
    paths = distinct_images(args.distinct)
    host, port = start_host(paths)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-download-urls-") as folder:
            url_file = os.path.join(folder, "urls.txt")
            lines = (
                f"http://127.0.0.1:{port}/img/{paths[i % len(paths)].name}?n={i}\n"
                for i in range(args.images)
            )
            Path(url_file).write_text("".join(lines))
            report(args, url_file, paths)
    finally:
        host.terminate()
        host.join(timeout=5)


def served(paths: list[Path]) -> dict:
    """What the server holds: counts by format, sizes in bytes and pixels."""
    from PIL import Image

    sizes = [path.stat().st_size for path in paths]
    longer = [max(Image.open(path).size) for path in paths]
    formats: dict[str, int] = {}
    for path in paths:
        formats[path.suffix[1:]] = formats.get(path.suffix[1:], 0) + 1
    return {
        "distinct": len(paths),
        "formats": formats,
        "median_kb": round(statistics.median(sizes) / 1024, 1),
        "longer_side_px": [min(longer), round(statistics.median(longer)), max(longer)],
    }


def report(args: argparse.Namespace, url_file: str, paths: list[Path]) -> None:
    kinds = CONTENDERS + (CONTEXT if args.context else ())
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    sampled: dict[str, list[dict]] = {kind: [] for kind in kinds}
    rounds = [False] * args.runs + [True] * args.memory_runs
    for number, sample_memory in enumerate(rounds, start=1):
        for kind in kinds:
            measured = measure(kind, url_file, args.threads, sample_memory)
            (sampled if sample_memory else runs)[kind].append(measured)
            label = "memory" if sample_memory else "timed"
            print(f"run {number} {label} {kind:15}: {json.dumps(measured)}", flush=True)
    for kind, measured in runs.items():
        fetched = [m["ok"] for m in measured + sampled[kind]]
        if any(ok != args.images for ok in fetched):
            print(f"warning: {kind} did not fetch every image: {fetched}")

    def median_rate(kind: str, seconds: str = "seconds") -> float:
        return statistics.median(m["ok"] / m[seconds] for m in runs[kind])

    def cpu_ms(kind: str) -> float:
        return round(statistics.median(m["cpu_s"] / m["ok"] * 1000 for m in runs[kind]), 2)

    def peak(kind: str) -> float:
        return round(statistics.median(m["peak_mb"] for m in sampled[kind]), 1)

    ours, anchor = median_rate("ours", "work_seconds"), median_rate("anchor", "shard_seconds")
    one_worker = median_rate("ours_one_worker", "work_seconds")
    summary = {
        "bench": "download", "ours": round(ours, 1), "anchor": round(anchor, 1),
        "unit": "images/s", "ratio": round(ours / anchor, 3),
        "ours_config": f"paircurate, {usable_cores()} Fetch workers (one per core), "
                       "timed inside their work",
        "anchor_config": f"img2dataset, {usable_cores()} processes (one per core), "
                         "timed inside its shards",
        "ours_peak_mb": peak("ours"), "anchor_peak_mb": peak("anchor"),
        "memory_ratio": round(peak("ours") / peak("anchor"), 3),
        "ours_one_worker": round(one_worker, 1),
        "one_worker_ratio": round(one_worker / anchor, 3),
        "ours_one_worker_peak_mb": peak("ours_one_worker"),
        "one_worker_memory_ratio": round(peak("ours_one_worker") / peak("anchor"), 3),
        "ours_whole_call": round(median_rate("ours"), 1),
        "ours_one_worker_whole_call": round(median_rate("ours_one_worker"), 1),
        "anchor_whole_call": round(median_rate("anchor"), 1),
        "ours_cpu_ms_per_image": cpu_ms("ours"),
        "ours_one_worker_cpu_ms_per_image": cpu_ms("ours_one_worker"),
        "anchor_cpu_ms_per_image": cpu_ms("anchor"),
        "images": args.images, "threads": args.threads, "cores": usable_cores(),
        "runs": args.runs, "memory_runs": args.memory_runs, "served": served(paths),
    }  # fmt: skip
    if args.context:
        threads_only = median_rate("ours_threads", "work_seconds")
        one = median_rate("anchor_one_process", "shard_seconds")
        summary.update({
            "ours_threads": round(threads_only, 1),
            "ours_threads_peak_mb": peak("ours_threads"),
            "anchor_one_process_in_shard": round(one, 1),
            "anchor_one_process_whole_call": round(median_rate("anchor_one_process"), 1),
            "anchor_one_process_peak_mb": peak("anchor_one_process"),
        })  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
