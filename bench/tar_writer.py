"""Our TarWriter against tarfile writing the same WebDataset members.

transforms/output/shards.py writes ustar headers from a template, where
tarfile builds a TarInfo, copies it, packs every field and passes the data
through its stream buffer for each member. Both produce the same bytes (the
bench checks it, as the tests do). The members are those of a fetched shard:
per sample a JPEG of ``--image-kb`` and a JSON of about 600 bytes.

    python bench/tar_writer.py --samples 5000 --rounds 5

Last line: one JSON object (bench convention); ``ratio`` = tarfile's CPU time
per member / ours (best of ``--rounds``).
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import time

from paircurate.transforms.output.shards import TarWriter, member_info


def by_tarfile(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            tar.addfile(member_info(name, len(data)), io.BytesIO(data))
    return out.getvalue()


def by_ours(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_all(members)
    writer.close()
    return out.getvalue()


def best_us(write, members: list[tuple[str, bytes]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        write(members)
        times.append(time.process_time() - started)
    return round(min(times) / len(members) * 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--image-kb", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    members: list[tuple[str, bytes]] = []
    for sample in range(args.samples):
        members.append((f"{sample:09d}.jpg", bytes([sample % 256]) * (args.image_kb * 1024)))
        members.append((f"{sample:09d}.json", b'{"uid": "%09d"}' % sample + b" " * 580))
    identical = by_ours(members) == by_tarfile(members)
    ours, anchor = best_us(by_ours, members, args.rounds), best_us(by_tarfile, members, args.rounds)
    print(json.dumps({
        "bench": "tar_writer", "ours": ours, "anchor": anchor, "unit": "us/member (CPU)",
        "ratio": round(anchor / ours, 2), "anchor_config": "tarfile, mode w|, USTAR",
        "identical_bytes": identical, "members": len(members), "rounds": args.rounds,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
