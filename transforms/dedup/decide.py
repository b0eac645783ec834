"""One decision per member of a duplicate cluster: which copy stays, and why the others go.

Clusters come from the connected components of two graphs: near-duplicate
captions and duplicate images (see ``transforms.near_duplicates``). The rules,
in the order they apply:

1. ``--drop-image-repeats``: one pair per image cluster stays (``image_duplicate``).
2. ``--near-duplicates`` (the pair rule, on by default): inside one caption
   cluster, pairs whose images are the same (one image cluster) or within
   ``--phash-max-distance`` bits of pHash form pair clusters; one pair of each
   stays (``near_duplicate``). The pHash comparison runs per caption cluster,
   with banded buckets, so it never looks at all pairs of the dataset.
3. ``--drop-caption-repeats``: one pair per caption cluster stays (``caption_duplicate``).
4. ``--caption-cluster-cap N``: at most N pairs per caption cluster stay
   (``caption_cluster_cap``).

The keeper is always the best pair by a stable rule: the larger original
image, then the smallest uid. The same input gives the same keepers on any
runner and any number of workers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.clusters import DisjointSets
from paircurate.transforms.dedup.near_duplicates import Node, ledger_node, phash_distance
from paircurate.transforms.dedup.phash import near_duplicate_pairs


@dataclass(frozen=True)
class Member:
    """A row in at least one non-trivial cluster, with the roots (smallest uids) of its clusters."""

    node: Node
    caption_root: str | None = None
    image_root: str | None = None

    @property
    def uid(self) -> str:
        return self.node[0]

    @property
    def chunk(self) -> int:
        return self.node[1]

    @property
    def has_image(self) -> bool:
        return self.node[2] > 0

    @property
    def rank(self) -> tuple[int, str]:
        """Sort key of the keeper rule: larger original image first, then smallest uid."""
        return (-self.node[2], self.node[0])


def ledger_member(row: dict[str, Any]) -> Member:
    """A row's Member as Decide made it, rebuilt from its ledger row (clusters as recorded)."""
    return Member(
        ledger_node(row),
        caption_root=row.get("caption_cluster"),
        image_root=row.get("image_cluster"),
    )


def decision(member: Member, **fields: str | None) -> dict[str, object]:
    """The ledger fields a member's cluster decision sets (reason None: kept)."""
    return {
        "uid": member.uid,
        "chunk": member.chunk,
        "caption_cluster": member.caption_root,
        "image_cluster": member.image_root,
        "reason": None,
        "reason_detail": None,
        "duplicate_of": None,
        "cluster_id": None,
        **fields,
    }


def drop_image_repeats(members: Iterable[Member]) -> tuple[Iterator[dict], list[Member]]:
    """Rule 1 for one image cluster: (decisions of the dropped repeats, the survivor).

    ``members`` is read twice (Beam's grouped values can be) and never held: one
    pass finds the keeper, the returned iterator makes the other pass.
    """
    keeper = min(members, key=lambda m: m.rank)
    detail = f"same image as {keeper.uid}, whatever the caption"
    dropped = (
        decision(m, reason="image_duplicate", reason_detail=detail, duplicate_of=keeper.uid)
        for m in members
        if m.rank != keeper.rank
    )
    return dropped, [keeper]


class _PairGroups:
    """Rule 2's pair clusters of one caption cluster, from one pass and without its members.

    Members of one image cluster, or whose pHashes are close, form a pair
    cluster. The pass keeps one entry per image cluster (or per image outside
    any) and one per distinct pHash, so a caption repeated over a million
    copies of one image costs a handful of entries.
    """

    def __init__(self, members: Iterable[Member], config: DedupConfig):
        self.sets: DisjointSets[int] = DisjointSets()
        self.best: list[Member] = []
        self.count: list[int] = []
        self.perceptual = config.perceptual_images
        index: dict[tuple[str, str], int] = {}
        first_of_hash: dict[int, int] = {}
        for member in members:
            key = self.key(member)
            if key is None:
                continue
            node = index.setdefault(key, len(self.best))
            if node == len(self.best):
                self.best.append(member)
                self.count.append(0)
            elif member.rank < self.best[node].rank:
                self.best[node] = member
            self.count[node] += 1
            if self.perceptual and member.has_image:
                self.sets.union(node, first_of_hash.setdefault(member.node[3], node))
        if len(first_of_hash) > 1:
            hashes = np.array(list(first_of_hash), dtype=np.int64).view(np.uint64)
            holders = list(first_of_hash.values())
            for a, b in near_duplicate_pairs(hashes, config.phash_max_distance):
                self.sets.union(holders[a], holders[b])
        self.keeper: dict[int, Member] = {}
        self.size: dict[int, int] = {}
        for node in range(len(self.best)):
            root = self.sets.find(node)
            best = self.keeper.get(root)
            if best is None or self.best[node].rank < best.rank:
                self.keeper[root] = self.best[node]
            self.size[root] = self.size.get(root, 0) + self.count[node]
        self.index = index

    def key(self, member: Member) -> tuple[str, str] | None:
        if member.image_root is not None:
            return ("image", member.image_root)
        if self.perceptual and member.has_image:
            return ("uid", member.uid)
        return None  # no image to compare: never in a pair cluster

    def keeper_of(self, member: Member) -> Member | None:
        """The kept pair of the member's pair cluster, or None when it is in none."""
        key = self.key(member)
        if key is None:
            return None
        root = self.sets.find(self.index[key])
        return self.keeper[root] if self.size[root] > 1 else None


def decide_caption_cluster(members: Iterable[Member], config: DedupConfig) -> Iterator[dict]:
    """Rules 2-4 for the members of one caption cluster: a decision for each of them.

    ``members`` must be re-iterable (Beam's grouped values are): it is read in
    three passes (pair clusters, survivors, decisions) and never held, so a
    caption repeated millions of times fits one worker.
    """
    groups = _PairGroups(members, config) if config.near_duplicates else None

    def pair_keeper(member: Member) -> Member | None:
        return groups.keeper_of(member) if groups is not None else None

    cap = config.caption_cluster_cap
    wanted = 1 if config.drop_caption_repeats else (cap or 0)
    best, surviving = _best_survivors(members, pair_keeper, wanted) if wanted else ([], 0)
    best_ranks = {m.rank for m in best}
    capped = not config.drop_caption_repeats and cap and surviving > cap
    for member in members:
        fields: dict[str, str | None] = {}
        keeper = pair_keeper(member)
        if keeper is not None:
            fields["cluster_id"] = keeper.uid
            if keeper.rank != member.rank:
                fields.update(
                    reason="near_duplicate",
                    reason_detail=_pair_detail(member, keeper),
                    duplicate_of=keeper.uid,
                )
                yield decision(member, **fields)
                continue
        if config.drop_caption_repeats and best and member.rank != best[0].rank:
            fields.update(
                reason="caption_duplicate",
                reason_detail=f"caption near-duplicates the kept pair {best[0].uid}",
                duplicate_of=best[0].uid,
            )
        elif capped and member.rank not in best_ranks:
            fields.update(
                reason="caption_cluster_cap",
                reason_detail=f"caption cluster of {surviving} pairs keeps the best {cap}",
            )
        yield decision(member, **fields)


def _best_survivors(
    members: Iterable[Member], pair_keeper: Callable[[Member], Member | None], wanted: int
) -> tuple[list[Member], int]:
    """The ``wanted`` best members the pair rule left, in rank order, and how many it left."""
    surviving = 0

    def survivors() -> Iterator[Member]:
        nonlocal surviving
        for member in members:
            keeper = pair_keeper(member)
            if keeper is None or keeper.rank == member.rank:
                surviving += 1
                yield member

    best = heapq.nsmallest(wanted, survivors(), key=lambda m: m.rank)
    return best, surviving


def _pair_detail(member: Member, keeper: Member) -> str:
    if member.image_root is not None and member.image_root == keeper.image_root:
        image = "the same image"
    else:
        bits = phash_distance(member.node, keeper.node)
        image = f"an image {bits} pHash bits away"
    return f"{image} and a near-duplicate caption of the kept pair {keeper.uid}"


def annotate(members: Iterable[Member]) -> list[dict]:
    """Decisions that only record cluster membership (rows kept by every rule)."""
    return [decision(m) for m in members]
