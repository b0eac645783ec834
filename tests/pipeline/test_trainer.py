"""The shards train: demo shards read back with webdataset and feed open_clip_train.

One demo run (a synthetic web on 127.0.0.1, the whole job) makes a few shards;
they are read back with webdataset exactly as written, and a tiny CLIP model
trains a few steps on them with ``open_clip_train``, in a subprocess so that
its logging, global state and torch threads stay out of the test process.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from paircurate.pipeline.demo import run_demo

pytestmark = pytest.mark.slow

PAIRS = 120
SHARD_SIZE = 40  # a few shards, so the brace pattern and sizes.json cover several files
BATCH_SIZE = 8
MODEL_NAME = "paircurate-tiny-clip"
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# add_model_config must run in the process that trains; argv[1] is the config file.
TRAIN_SCRIPT = (
    "import sys, open_clip\n"
    "open_clip.add_model_config(sys.argv[1])\n"
    "from open_clip_train.main import main\n"
    "main(sys.argv[2:])\n"
)
STEP_LINE = re.compile(
    r"Train Epoch: (?P<epoch>\d+) \[\s*(?P<seen>\d+)/(?P<total>\d+) .*"
    r"Contrastive_loss: (?P<contrastive>\S+) .* Loss: (?P<loss>\S+) "
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """Output folder and stats of one demo run, shared by the tests below."""
    output = tmp_path_factory.mktemp("trainer") / "demo"
    stats = run_demo(str(output), PAIRS, extra_args=["--shard-size", str(SHARD_SIZE)])
    return output, stats


def read_sizes(output: Path) -> dict[str, int]:
    return json.loads((output / "shards" / "sizes.json").read_text())


def shard_pattern(output: Path, sizes: dict[str, int]) -> str:
    """The brace pattern open_clip takes: ``.../{00000..0000K}.tar``."""
    names = sorted(sizes)
    assert names == [f"{index:05d}.tar" for index in range(len(names))], names
    first, last = names[0].removesuffix(".tar"), names[-1].removesuffix(".tar")
    return str(output / "shards" / f"{{{first}..{last}}}.tar")


def test_shards_read_back_with_webdataset(demo):
    output, stats = demo
    sizes = read_sizes(output)
    assert len(sizes) == stats["shards"] >= 2
    keys = []
    for name, size in sorted(sizes.items()):
        dataset = wds.WebDataset(str(output / "shards" / name), shardshuffle=False)
        samples = list(dataset.decode("pil"))
        assert len(samples) == size, name
        for sample in samples:
            assert isinstance(sample["jpg"], Image.Image)
            assert sample["jpg"].size[0] > 0 and sample["jpg"].size[1] > 0
            meta = sample["json"]
            assert sample["txt"] and sample["txt"] == meta["caption"]
            assert meta["status"] == "kept"
            assert meta["key"] == sample["__key__"]
            assert meta["shard"] == name.removesuffix(".tar")
            keys.append(sample["__key__"])
    assert len(keys) == len(set(keys)) == sum(sizes.values())
    assert len(keys) == stats["kept"] == stats["status"]["kept"]["count"]


def test_wids_reads_random_samples_as_webdataset_streams_them(demo, tmp_path):
    """The run's wids index, beside the same shards open_clip trains on, gives each sample's
    exact bytes at random; DALI's index of each tar points at the same bytes."""
    wids = pytest.importorskip("wids")
    output, stats = demo
    streamed = []
    for name in sorted(read_sizes(output)):
        dataset = wds.WebDataset(str(output / "shards" / name), shardshuffle=False)
        streamed += list(dataset)
    assert len(streamed) == stats["kept"]
    indexed = wids.ShardListDataset(
        str(output / "shards" / "shardindex.json"), cache_dir=str(tmp_path), transformations=[]
    )
    assert len(indexed) == len(streamed)
    for position in random.Random(0).sample(range(len(streamed)), min(25, len(streamed))):
        expected, sample = streamed[position], indexed[position]
        assert sample["__key__"] == expected["__key__"]
        for ext in ("jpg", "json", "txt"):
            assert sample[f".{ext}"].getvalue() == expected[ext]
    by_member = {f"{s['__key__']}.{ext}": s[ext] for s in streamed for ext in ("jpg", "txt")}
    for name in read_sizes(output):
        lines = (output / "shards" / name.replace(".tar", ".idx")).read_text().splitlines()
        with open(output / "shards" / name, "rb") as tar:
            for line in lines[1:]:
                fields = line.split(" ")
                for ext, offset, size, member in zip(*[iter(fields)] * 4, strict=True):
                    if ext in ("jpg", "txt"):
                        tar.seek(int(offset))
                        assert tar.read(int(size)) == by_member[member]


def test_the_dataset_card_validates_and_reads_the_shard_parquet(demo):
    mlc = pytest.importorskip("mlcroissant")
    output, stats = demo
    card = mlc.Dataset(jsonld=str(output / "croissant.json"))
    assert not card.metadata.ctx.issues.errors and not card.metadata.ctx.issues.warnings
    keys = sorted(record["samples/key"].decode() for record in card.records("samples"))
    assert len(keys) == stats["kept"]
    parquet = sorted((output / "shards").glob("*.parquet"))
    assert keys == sorted(key for path in parquet for key in pq.read_table(path)["key"].to_pylist())
    assert "## Languages" in (output / "DATASET_CARD.md").read_text()


def test_open_clip_counts_samples_from_sizes_json(demo):
    from open_clip_train.data import get_dataset_size

    output, stats = demo
    sizes = read_sizes(output)
    assert get_dataset_size(shard_pattern(output, sizes)) == (stats["kept"], len(sizes))


def train(output: Path, stats: dict, workdir: Path, with_num_samples: bool) -> dict:
    """Train the tiny model for one epoch over the shards; return the parsed log."""
    config = workdir / f"{MODEL_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP))
    argv = [
        "--train-data", shard_pattern(output, read_sizes(output)),
        "--dataset-type", "webdataset",
        "--batch-size", str(BATCH_SIZE),
        "--epochs", "1",
        "--workers", "0",
        "--device", "cpu",
        "--precision", "fp32",
        "--model", MODEL_NAME,
        "--lr", "1e-3",
        "--warmup", "1",
        "--logs", str(workdir / "logs"),
        "--name", "run",
        "--report-to", "",
        "--log-every-n-steps", "1",
        "--save-frequency", "0",
        "--seed", "0",
    ]  # fmt: skip
    if with_num_samples:
        argv += ["--train-num-samples", str(stats["kept"])]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(config), *argv],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    log_text = (workdir / "logs" / "run" / "out.log").read_text()
    steps = [match.groupdict() for match in STEP_LINE.finditer(log_text)]
    return {"log": log_text + console, "steps": steps, "tail": console[-4000:]}


@pytest.mark.parametrize("with_num_samples", [True, False], ids=["num-samples", "sizes-json"])
def test_open_clip_trains_on_the_shards(demo, tmp_path, with_num_samples):
    output, stats = demo
    run = train(output, stats, tmp_path, with_num_samples)
    steps = run["steps"]
    assert len(steps) >= 2, run["tail"]
    # open_clip rounds the epoch up to whole batches; without --train-num-samples
    # the sample count comes from sizes.json, so both runs see the same epoch.
    batches = math.ceil(stats["kept"] / BATCH_SIZE)
    assert len(steps) == batches
    assert {int(step["total"]) for step in steps} == {batches * BATCH_SIZE}
    assert int(steps[-1]["seen"]) == batches * BATCH_SIZE
    for step in steps:
        assert math.isfinite(float(step["contrastive"])), step
        assert math.isfinite(float(step["loss"])), step
    # open_clip skips samples it cannot read with only a warning: there must be none.
    assert "Handling webdataset error" not in run["log"]
    assert (tmp_path / "logs" / "run" / "checkpoints" / "epoch_1.pt").exists()
