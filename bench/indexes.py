"""Loader indexes written with the shards, against indexing the finished tars afterwards.

Ours: the Write step's tar writer records each member's offset, and the DALI
index (``NNNNN.idx``) and the wids shard index are formatted from that; what
the bench times is that extra work (formatting and writing the index files).
Anchors, on the same tars, as their tools index them:

- DALI's ``wds2idx``: GNU tar listing each tar twice (``tar --list
  --block-num`` and ``tar --verbose --list``), the tool's default where tar is
  installed; only the listing is timed, not its parsing;
- ``widsindex create`` (webdataset's wids): the md5 of each tar and its sample
  count by wids' own header scan (``MMIndexedTar``).

The tars are on local disk and were just written, so the anchors read them
from the page cache: their best case. On object storage they would download
every tar again.

    python bench/indexes.py --shards 4 --samples 2000 --rounds 5

Last line: one JSON object; ``ratio`` = wds2idx's seconds / ours, ``ratio_widsindex`` the
same for widsindex (medians of the rounds, each round on freshly written tars).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from paircurate.pipeline.filesystem import FILES
from paircurate.transforms.output import storage
from paircurate.transforms.output.indexes import ShardFile, dali_index, wids_index
from paircurate.transforms.output.shards import TarWriter, sample_members


def write_tar(path: Path, samples: int, image_kb: int, seed: int) -> TarWriter:
    rng = random.Random(seed)
    with open(path, "wb") as stream:
        writer = TarWriter(stream)
        for index in range(samples):
            key = f"{seed:05d}{index:06d}"
            image = rng.randbytes(image_kb * 1024 + rng.randrange(1024))
            writer.add_all(sample_members(key, image, "jpg", f"caption {index}", {"key": key}))
        writer.close()
    return writer


def ours(folder: Path, writers: dict[str, TarWriter]) -> float:
    """The index work the Write step adds: DALI indexes and the wids index, written."""
    started = time.perf_counter()
    shards = {}
    for name, writer in writers.items():
        index = dali_index(writer.members)
        storage.write_bytes(FILES, str(folder / f"{name}.idx"), index.encode())
        shards[name] = ShardFile(len(writer.members) // 3, writer.size)
    document = json.dumps(wids_index(shards, "bench"), indent=1).encode()
    storage.write_bytes(FILES, str(folder / "shardindex.json"), document)
    return time.perf_counter() - started


def dali_tool(tars: list[Path]) -> float:
    started = time.perf_counter()
    for tar in tars:
        for flags in (["--list", "--block-num"], ["--verbose", "--list"]):
            subprocess.run(["tar", *flags, "--file", str(tar)], capture_output=True, check=True)
    return time.perf_counter() - started


def wids_tool(tars: list[Path]) -> float:
    from wids.wids import compute_file_md5sum, compute_num_samples

    started = time.perf_counter()
    for tar in tars:
        compute_file_md5sum(str(tar))
        compute_num_samples(str(tar))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2000, help="samples per shard")
    parser.add_argument("--image-kb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"ours": [], "dali_wds2idx": [], "widsindex": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for round_ in range(args.rounds):
            writers = {
                f"{shard:05d}": write_tar(folder / f"{shard:05d}.tar", args.samples,
                                          args.image_kb, 1000 * round_ + shard)
                for shard in range(args.shards)
            }  # fmt: skip
            tars = sorted(folder.glob("*.tar"))
            timings["ours"].append(ours(folder, writers))
            timings["dali_wds2idx"].append(dali_tool(tars))
            timings["widsindex"].append(wids_tool(tars))
        tar_bytes = sum(path.stat().st_size for path in folder.glob("*.tar"))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "bench": "indexes",
        "ours": round(medians["ours"], 4),
        "unit": "s to index the run's tars (median)",
        "anchor": "DALI wds2idx's tar listings",
        "anchor_s": round(medians["dali_wds2idx"], 4),
        "ratio": round(medians["dali_wds2idx"] / medians["ours"], 1),
        "widsindex_s": round(medians["widsindex"], 4),
        "ratio_widsindex": round(medians["widsindex"] / medians["ours"], 1),
        **{f"{name}_s_range": [round(min(v), 4), round(max(v), 4)] for name, v in timings.items()},
        "shards": args.shards,
        "samples_per_shard": args.samples,
        "tar_mb": round(tar_bytes / 1e6, 1),
        "rounds": args.rounds,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
