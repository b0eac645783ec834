"""The DataComp protocol in miniature: does curation train a better CLIP than the raw pool?

One synthetic-web pool (default noise mix: mismatched captions, duplicates, junk and
non-English captions, broken images) is curated by ``paircurate run`` into variants;
``open_clip_train`` trains the same tiny CLIP from scratch on each variant's shards
(same architecture, hyper-parameters and samples seen: shards are drawn with
replacement, so a smaller set is seen more often); ``paircurate eval`` measures
zero-shot top-1 on the synthetic web's labelled held-out set and retrieval on its
held-out clean pairs. The anchor is the same recipe on the uncurated pool ("none").

The headline task (--task background) names the colour of each held-out image's
background, the attribute the captions teach most reliably (it covers most of the
picture and most captions name it); the table adds the object's colour on grey
backgrounds (the labelled set's "colour" task), which a briefly trained tiny CLIP
barely learns (docs/eval.md).

    python bench/datacomp_mini.py                      # defaults: 20,000 pairs, 3 seeds
    python bench/datacomp_mini.py --pairs 2000 --seeds 1 --samples-seen 8000

The last line is JSON: raw_top1, curated_top1, gain (curated minus raw), raw_sd and
curated_sd (their seeds' standard deviations), seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from paircurate.pipeline.cli import main as paircurate_main
from paircurate.pipeline.run import run
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest
from paircurate.synthweb.evalset import TASKS, write_evalset
from paircurate.synthweb.scenes import COLOURS
from paircurate.transforms.scoring.reference_scorer import REFERENCE_THRESHOLD, TRAIN_SEED

MODEL_NAME = "paircurate-datacomp-tiny"
TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# One process trains every seed of a variant, one after the other: importing torch
# and open_clip is paid once per variant, not once per seed. Each run's log handlers
# go before the next, so that each out.log holds its own run.
TRAIN_SCRIPT = """\
import json, logging, sys, open_clip
open_clip.add_model_config(sys.argv[1])
from open_clip_train.main import main
for argv in json.loads(sys.argv[2]):
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)
        handler.close()
    if main(argv) == -1:
        sys.exit(f"open_clip_train refused {argv}")
"""
# Caption rules off, so that "none" keeps every downloadable pair.
NO_CAPTION_RULES = [
    "--min-caption-chars", "0", "--max-caption-chars", "0", "--min-caption-words", "0",
    "--junk-captions", ",", "--no-drop-filename-captions", "--max-nonletter-share", "1",
]  # fmt: skip
BASIC = ["--languages", "en", "--min-image-size", "32", "--max-aspect-ratio", "3"]
NO_DEDUP = ["--url-dedup", "off", "--no-near-duplicates"]
DEDUP = ["--url-dedup", "url", "--near-duplicates"]
NO_CLIP = ["--clip-model", "none"]
CLIP_THRESHOLD = ["--clip-model", "paircurate-ref", "--clip-threshold", str(REFERENCE_THRESHOLD)]
CLIP_TOP30 = ["--clip-model", "paircurate-ref", "--clip-keep-fraction", "0.3"]
VARIANTS: dict[str, list[str]] = {
    "none": NO_CAPTION_RULES + NO_DEDUP + NO_CLIP,
    "basic": BASIC + NO_DEDUP + NO_CLIP,
    "dedup": NO_CAPTION_RULES + DEDUP + NO_CLIP,
    "clip_threshold": NO_CAPTION_RULES + NO_DEDUP + CLIP_THRESHOLD,
    "clip_top30": NO_CAPTION_RULES + NO_DEDUP + CLIP_TOP30,
    "all": BASIC + DEDUP + CLIP_THRESHOLD,
}
RAW, CURATED = "none", "all"
BACKGROUND = "background"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20000, help="pairs in the pool")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic web (pool)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per variant")
    parser.add_argument("--samples-seen", type=int, default=12000, help="per training run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=20, help="warmup steps")
    parser.add_argument("--eval-images", type=int, default=1200, help="labelled held-out images")
    parser.add_argument(
        "--task", default=BACKGROUND, choices=(BACKGROUND, *TASKS),
        help="zero-shot task of the headline: background (the colour of the background, named "
        "in most captions and covering most of the picture, on the web's own backgrounds) or a "
        "task of the labelled set (on --eval-background backgrounds)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-background", default="neutral", choices=("neutral", "random"),
        help="backgrounds of the held-out set of a labelled --task and of the object-colour "
        "column: neutral (grey, no class colour) or random (another class colour)",
    )  # fmt: skip
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads for training and eval: on a busy machine, more threads than idle "
        "cores make every step wait on the slowest (see docs/eval.md)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=2,
        help="variants trained at once (each on --threads torch threads, its seeds one after "
        "the other in one process), beside the curation",
    )  # fmt: skip
    parser.add_argument("--workdir", default="", help="keep runs here (default: a temp folder)")
    return parser.parse_args(argv)


def curate(variant: str, manifest: str, out: Path) -> dict:
    argv = [
        "--input", manifest, "--output", str(out), "--allow-private-networks",
        "--timeout", "5", "--image-size", "64", "--shard-size", "1000", "--image-processes", "0",
        *VARIANTS[variant],
    ]  # fmt: skip
    return run(argv)


def train(
    shards: Path, workdir: Path, config: Path, seeds: range, args: argparse.Namespace
) -> list[Path]:
    """Train the tiny CLIP on ``shards`` once per seed, in one process; the checkpoints."""
    names = sorted(json.loads((shards / "sizes.json").read_text()))
    first, last = names[0].removesuffix(".tar"), names[-1].removesuffix(".tar")
    runs = [
        [
            "--train-data", str(shards / f"{{{first}..{last}}}.tar"),
            "--dataset-type", "webdataset", "--dataset-resampled",
            "--train-num-samples", str(args.samples_seen), "--epochs", "1",
            "--batch-size", str(args.batch_size), "--workers", "1",
            "--device", args.device, "--precision", "fp32", "--model", MODEL_NAME,
            "--lr", str(args.lr), "--wd", "0.1", "--warmup", str(args.warmup),
            "--logs", str(workdir), "--name", f"seed{seed}", "--report-to", "",
            "--save-frequency", "1", "--seed", str(seed), "--log-every-n-steps", "50",
        ]
        for seed in seeds
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(config), json.dumps(runs)],
        cwd=workdir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"open_clip_train failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return [workdir / f"seed{seed}" / "checkpoints" / "epoch_1.pt" for seed in seeds]


def timed_train(timings: dict[str, list[float]], *args) -> list[Path]:
    with timed(timings, "train"):
        return train(*args)


def zeroshot_args(task: str, evalsets: dict[str, Path], background: str) -> list[str]:
    """``paircurate eval`` arguments of a zero-shot task on the held-out sets.

    "background" reads the background's colour name from each sample's JSON on the
    web's own (random) backgrounds, with the colour names as classes; a task of the
    labelled set runs on the ``background`` set ("neutral" or "random").
    """
    if task == BACKGROUND:
        random_set = evalsets["random"]
        return [
            "--zeroshot", str(random_set), "--class-field", "json.background",
            "--classnames", str(random_set / "background-classes.json"),
        ]  # fmt: skip
    return ["--zeroshot", str(evalsets[background]), "--task", task]


def write_evalsets(root: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The held-out sets of seed --seed + 1, one per background kind, same scenes."""
    evalsets = {}
    for background in ("random", "neutral"):
        folder = evalsets[background] = root / f"evalset-{background}"
        write_evalset(folder, args.eval_images, seed=args.seed + 1, side=64, background=background)
    (evalsets["random"] / "background-classes.json").write_text(json.dumps(list(COLOURS)))
    return evalsets


def eval_checkpoint(checkpoint: Path, config: Path, zeroshot: list[str], name: str, args) -> dict:
    out = checkpoint.with_suffix(f".{name}.json")
    code = paircurate_main(
        [
            "eval", "--model-config", str(config), "--model", MODEL_NAME,
            "--checkpoint", str(checkpoint), "--device", args.device,
            *zeroshot, "--output", str(out),
        ]
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"paircurate eval failed on {checkpoint}")
    return json.loads(out.read_text())


def evaluate(checkpoint: Path, config: Path, evalsets: dict[str, Path], args) -> dict:
    """Headline top-1 (--task), object-colour top-1 and retrieval R@5 (on web backgrounds)."""
    headline = zeroshot_args(args.task, evalsets, args.eval_background)
    retrieval = ["--retrieval", str(evalsets["random"])]
    found = eval_checkpoint(checkpoint, config, headline + retrieval, "headline", args)
    if args.task == "colour":  # the headline already is the object-colour column
        object_colour = found
    else:
        colour = zeroshot_args("colour", evalsets, args.eval_background)
        object_colour = eval_checkpoint(checkpoint, config, colour, "colour", args)
    recall = found["retrieval"]
    return {
        "top1": found["zeroshot"]["top1"],
        "colour": object_colour["zeroshot"]["top1"],
        "recall5": (recall["image_retrieval_recall@5"] + recall["text_retrieval_recall@5"]) / 2,
    }


@contextlib.contextmanager
def timed(timings: dict[str, list[float]], part: str) -> Iterator[None]:
    """Add the wall time of the block to ``timings[part]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings.setdefault(part, []).append(time.perf_counter() - started)


def timing_line(timings: dict[str, list[float]], total: float) -> str:
    """Where the time went: each part's sum, and per run where a part ran several times."""
    parts = []
    for part, values in timings.items():
        text = f"{part} {sum(values):.0f} s"
        if len(values) > 1:
            text += f" ({len(values)} runs, median {statistics.median(values):.0f} s)"
        parts.append(text)
    return f"time: {'; '.join(parts)}; {total:.0f} s in all"


def table(rows: list[dict], args: argparse.Namespace) -> str:
    """The DataComp-style table: one line per variant, mean ± spread over training seeds."""
    lines = [
        f"| variant | pairs | samples seen | zero-shot top-1 ({args.task}) "
        f"| object colour top-1 | retrieval R@5 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [spread(row[key]) if row[key] else "—" for key in ("top1", "colour", "recall5")]
        lines.append(
            f"| {row['variant']} | {row['pairs']} | {args.samples_seen} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def mean_and_sd(values: list[float] | None) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value; None, None for none)."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spread(values: list[float]) -> str:
    mean, sd = mean_and_sd(values)
    return f"{mean:.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="datacomp-mini-"))
    root.mkdir(parents=True, exist_ok=True)
    config = root / f"{MODEL_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP))
    evalsets = write_evalsets(root, args)
    # One rendering of the pool, kept in memory: every variant's run downloads the
    # same bytes from it, so serving the pool is paid once, not once per variant.
    web = SyntheticWeb(args.pairs, seed=args.seed, mix=WebMix())
    timings: dict[str, list[float]] = {}
    with timed(timings, "pool"):
        served = web.mirror(processes=os.cpu_count() or 1)
    print(
        f"pool: {args.pairs} pairs of synthetic web seed {args.seed} (default noise mix); "
        f"held-out sets: {args.eval_images} labelled images of seed {args.seed + 1} on the "
        f"web's backgrounds and on grey ones; headline task {args.task}. The CLIP filters use the "
        f"reference scorer paircurate-ref, a teacher "
        f"trained on clean pairs of web seed {TRAIN_SEED}: a stronger model filtering data "
        f"for a weaker one, as DataComp's CLIP filter is. The pool is rendered once "
        f"({served / 1e6:.0f} MB of image bodies in {timings['pool'][0]:.0f} s) and every "
        f"variant downloads it from that copy.",
        flush=True,
    )
    curated: dict[str, int] = {}
    trainings: dict[str, Future] = {}
    # Each variant trains in a process of its own, --jobs at once, while the next is curated.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        with SyntheticWebServer(web, slow_seconds=8) as server:
            manifest = write_manifest(web, server.base_url, str(root / "pool.parquet"))
            for variant in args.variants.split(","):
                out = root / variant
                with timed(timings, "curate"):
                    curated[variant] = curate(variant, manifest, out)["kept"]
                print(f"{variant}: {curated[variant]} pairs", flush=True)
                if curated[variant]:
                    seeds = range(args.seeds)
                    trainings[variant] = pool.submit(
                        timed_train, timings, out / "shards", out / "train", config, seeds, args
                    )
        rows = []
        for variant, kept in curated.items():
            row = {"variant": variant, "pairs": kept, "top1": [], "colour": [], "recall5": []}
            for checkpoint in trainings[variant].result() if kept else []:
                with timed(timings, "eval"):
                    result = evaluate(checkpoint, config, evalsets, args)
                for key in ("top1", "colour", "recall5"):
                    row[key].append(result[key])
            rows.append(row)
            print(f"{variant}: {json.dumps(row)}", flush=True)
    print()
    print(table(rows, args))
    by_name = {row["variant"]: row["top1"] for row in rows}
    raw, raw_sd = mean_and_sd(by_name.get(RAW))
    cur, cur_sd = mean_and_sd(by_name.get(CURATED))
    gain = None if raw is None or cur is None else cur - raw
    elapsed = time.perf_counter() - started
    print(
        f"\nzero-shot top-1 ± sample stdev over {args.seeds} training seed(s) ({args.task}; "
        f"object colour on {args.eval_background} backgrounds); R@5 is the mean of both "
        f"directions on web backgrounds; {elapsed:.0f} s in all; runs in {root}"
    )
    print(timing_line(timings, elapsed))
    summary = {
        "raw_top1": raw,
        "curated_top1": cur,
        "gain": gain,
        "raw_sd": raw_sd,
        "curated_sd": cur_sd,
        "seeds": args.seeds,
        "pairs": args.pairs,
        "samples_seen": args.samples_seen,
        "task": args.task,
        "seconds": round(elapsed),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
