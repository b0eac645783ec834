"""Random-access indexes of the final shards, written with them.

Two loaders read a WebDataset tar at random instead of from start to end:

- webdataset's indexed reader, ``wids`` (shipped in the webdataset wheel),
  takes a JSON shard index for the whole dataset: each shard's file and
  sample count (``"__kind__": "wids-shard-index-v1"``, as its ``widsindex
  create`` writes). Shard URLs are relative to the index's own location, so a
  copied or uploaded run folder keeps working.
- NVIDIA DALI's ``fn.readers.webdataset`` takes one index file per tar
  (``index_paths``), in the text format its ``wds2idx`` tool writes (v1.2):
  a line ``v1.2 SAMPLES``, then per sample, per member, ``EXT OFFSET SIZE
  NAME``, where OFFSET is where the member's data starts.

Both come from what the tar writer already knows (``TarWriter.members``):
no tar is read a second time. DALI refuses an index of zero samples, so an
empty shard gets none (and belongs in no DALI path list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from paircurate.transforms.output.shards import TarMember

DALI_VERSION = "v1.2"
WIDS_KIND = "wids-shard-index-v1"


def split_member(name: str) -> tuple[str, str]:
    """(sample key, extension) of a member name: split at the first dot of its file name, as
    webdataset, wids and DALI all group members into samples."""
    start = name.rfind("/") + 1
    dot = name.find(".", start)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


def samples_of(members: Iterable[TarMember]) -> list[list[TarMember]]:
    """Members grouped into samples: runs of consecutive members with the same key."""
    samples: list[list[TarMember]] = []
    last = None
    for member in members:
        key, _ = split_member(member.name)
        if key != last:
            samples.append([])
            last = key
        samples[-1].append(member)
    return samples


def dali_index(members: Iterable[TarMember]) -> str | None:
    """The DALI index of a tar with ``members``; None for a tar without samples."""
    samples = samples_of(members)
    if not samples:
        return None
    lines = [f"{DALI_VERSION} {len(samples)}"]
    for sample in samples:
        parts = []
        for member in sample:
            _, ext = split_member(member.name)
            parts.append(f"{ext} {member.offset} {member.size} {member.name}")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


class ShardFile(NamedTuple):
    """What an index needs of one written shard: its sample count and its size in bytes."""

    samples: int
    size: int


def wids_index(shards: Mapping[str, ShardFile], name: str) -> dict:
    """wids' shard index of a run: every shard with samples, by file name next to the index."""
    shardlist = [
        {"url": f"{shard}.tar", "nsamples": entry.samples, "filesize": entry.size}
        for shard, entry in sorted(shards.items())
        if entry.samples
    ]
    return {"__kind__": WIDS_KIND, "wids_version": 1, "name": name, "shardlist": shardlist}
