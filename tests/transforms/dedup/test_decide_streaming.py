"""The streaming cluster decisions equal the rules applied to the whole cluster held in a list.

The reference below is the list-based implementation the streaming one replaced.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.decide import (
    Member,
    _pair_detail,
    decide_caption_cluster,
    decision,
    drop_image_repeats,
)
from paircurate.transforms.dedup.phash import near_duplicate_pairs


def reference_drop_image_repeats(members: Sequence[Member]) -> tuple[list[dict], list[Member]]:
    """The rule as it stood when it held every member in a list: the reference."""
    ordered = sorted(members, key=lambda m: m.rank)
    keeper, repeats = ordered[0], ordered[1:]
    detail = f"same image as {keeper.uid}, whatever the caption"
    dropped = [
        decision(m, reason="image_duplicate", reason_detail=detail, duplicate_of=keeper.uid)
        for m in repeats
    ]
    return dropped, [keeper]


def _reference_pair_groups(members: Sequence[Member], config: DedupConfig) -> list[list[int]]:
    """Indexes of members in one pair cluster: same image cluster, or close pHashes."""
    parent = list(range(len(members)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_of_image: dict[str, int] = {}
    for i, member in enumerate(members):
        if member.image_root is not None:
            union(i, first_of_image.setdefault(member.image_root, i))
    if config.perceptual_images:
        with_image = [i for i, m in enumerate(members) if m.has_image]
        hashes = np.array([members[i].node[3] for i in with_image], dtype=np.int64)
        hashes = hashes.view(np.uint64)
        for a, b in near_duplicate_pairs(hashes, config.phash_max_distance):
            union(with_image[a], with_image[b])
    groups: dict[int, list[int]] = {}
    for i in range(len(members)):
        groups.setdefault(find(i), []).append(i)
    return [group for group in groups.values() if len(group) > 1]


def reference_decide_caption_cluster(members: Sequence[Member], config: DedupConfig) -> list[dict]:
    """The rules as they stood when they held every member in a list: the reference."""
    members = sorted(members, key=lambda m: m.rank)
    decided: dict[int, dict] = {}
    if config.near_duplicates:
        for group in _reference_pair_groups(members, config):
            keeper = members[group[0]]  # members are in rank order, and so is each group
            for i in group:
                fields: dict[str, str | None] = {"cluster_id": keeper.uid}
                if i != group[0]:
                    fields.update(
                        reason="near_duplicate",
                        reason_detail=_pair_detail(members[i], keeper),
                        duplicate_of=keeper.uid,
                    )
                decided[i] = decision(members[i], **fields)
    survivors = [i for i in range(len(members)) if decided.get(i, {}).get("reason") is None]
    if config.drop_caption_repeats and survivors:
        keeper = members[survivors[0]]
        for i in survivors[1:]:
            decided[i] = {
                **decided.get(i, decision(members[i])),
                "reason": "caption_duplicate",
                "reason_detail": f"caption near-duplicates the kept pair {keeper.uid}",
                "duplicate_of": keeper.uid,
            }
        survivors = survivors[:1]
    cap = config.caption_cluster_cap
    if cap and len(survivors) > cap:
        detail = f"caption cluster of {len(survivors)} pairs keeps the best {cap}"
        for i in survivors[cap:]:
            decided[i] = {
                **decided.get(i, decision(members[i])),
                "reason": "caption_cluster_cap",
                "reason_detail": detail,
            }
    return [decided.get(i) or decision(members[i]) for i in range(len(members))]


class Members:
    """A cluster made on demand, as Beam hands grouped values: re-iterable, never a list."""

    def __init__(self, make, size: int):
        self.make, self.size, self.passes = make, size, 0

    def __iter__(self) -> Iterator[Member]:
        self.passes += 1
        return (self.make(i) for i in range(self.size))

    def __len__(self) -> int:
        raise AssertionError("the cluster was materialised")


def labelled_cluster(rng: random.Random, size: int) -> list[Member]:
    """Members of one caption cluster: shared images, near pHashes, text-only rows, area ties."""
    base = [rng.getrandbits(64) for _ in range(3)]
    members = []
    for n in rng.sample(range(1000), size):
        area = rng.choice([0, 100, 400, 400, 900])
        unsigned = rng.choice(base) ^ (1 << rng.randrange(64) if rng.random() < 0.5 else 0)
        phash = unsigned - 2**64 if unsigned >= 2**63 else unsigned  # stored as int64
        image = rng.choice([None, None, "i1", "i2", "i3"]) if area else None
        members.append(Member((f"{n:032x}", n % 5, area, phash), "c0", image))
    return members


CONFIGS = [
    DedupConfig(),
    DedupConfig(perceptual_images=False),
    DedupConfig(drop_caption_repeats=True),
    DedupConfig(caption_cluster_cap=2),
    DedupConfig(near_duplicates=False, caption_cluster_cap=3),
    DedupConfig(near_duplicates=False),
    DedupConfig(phash_max_distance=0, caption_cluster_cap=1),
]


def by_uid(decisions) -> dict[str, dict]:
    return {d["uid"]: d for d in decisions}


@pytest.mark.parametrize("config", CONFIGS)
def test_streamed_decisions_equal_the_list_rules_on_labelled_clusters(config):
    rng = random.Random(7)
    for _ in range(60):
        members = labelled_cluster(rng, rng.randint(1, 25))
        expected = by_uid(reference_decide_caption_cluster(list(members), config))
        streamed = Members(lambda i, members=members: members[i], len(members))
        assert by_uid(decide_caption_cluster(streamed, config)) == expected
        dropped, kept = drop_image_repeats(Members(lambda i, m=members: m[i], len(members)))
        want_dropped, want_kept = reference_drop_image_repeats(list(members))
        assert by_uid(dropped) == by_uid(want_dropped) and kept == want_kept


def test_a_caption_repeated_over_a_huge_cluster_is_never_held():
    """20k copies of one caption over one image: the decisions stream in constant memory."""
    size = 20_000

    def make(i: int) -> Member:
        return Member((f"{i:032x}", i % 7, 400 if i != 17_777 else 900, 12345), "c0", "img")

    members = Members(make, size)
    tracemalloc.start()
    reasons: dict[str | None, int] = {}
    for row in decide_caption_cluster(members, DedupConfig(caption_cluster_cap=3)):
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
        assert row["cluster_id"] == f"{17_777:032x}"
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reasons == {None: 1, "near_duplicate": size - 1}
    assert members.passes == 3
    # One Member with its uid is about 400 bytes: holding the cluster would take ~8 MB.
    assert peak < 1_000_000


def test_image_repeats_read_the_cluster_twice_and_hold_one_member():
    members = Members(lambda i: Member((f"{i:032x}", 0, 100 + i % 3, 0), None, "img"), 5000)
    dropped, kept = drop_image_repeats(members)
    assert [m.uid for m in kept] == [f"{2:032x}"]
    assert sum(1 for _ in dropped) == 4999 and members.passes == 2
