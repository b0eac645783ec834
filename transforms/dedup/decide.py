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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.clusters import DisjointSets
from paircurate.transforms.dedup.near_duplicates import Node, phash_distance
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


def drop_image_repeats(members: Sequence[Member]) -> tuple[list[dict], list[Member]]:
    """Rule 1 for one image cluster: (decisions of the dropped repeats, the survivor)."""
    ordered = sorted(members, key=lambda m: m.rank)
    keeper, repeats = ordered[0], ordered[1:]
    detail = f"same image as {keeper.uid}, whatever the caption"
    dropped = [
        decision(m, reason="image_duplicate", reason_detail=detail, duplicate_of=keeper.uid)
        for m in repeats
    ]
    return dropped, [keeper]


def _pair_groups(members: Sequence[Member], config: DedupConfig) -> list[list[int]]:
    """Indexes of members in one pair cluster: same image cluster, or close pHashes."""
    sets: DisjointSets[int] = DisjointSets()
    first_of_image: dict[str, int] = {}
    for i, member in enumerate(members):
        if member.image_root is not None:
            sets.union(i, first_of_image.setdefault(member.image_root, i))
    if config.perceptual_images:
        with_image = [i for i, m in enumerate(members) if m.has_image]
        hashes = np.array([members[i].node[3] for i in with_image], dtype=np.int64)
        hashes = hashes.view(np.uint64)
        for a, b in near_duplicate_pairs(hashes, config.phash_max_distance):
            sets.union(with_image[a], with_image[b])
    groups: dict[int, list[int]] = {}
    for i in range(len(members)):
        groups.setdefault(sets.find(i), []).append(i)
    return [group for group in groups.values() if len(group) > 1]


def decide_caption_cluster(members: Sequence[Member], config: DedupConfig) -> list[dict]:
    """Rules 2-4 for the members of one caption cluster: a decision for each of them."""
    members = sorted(members, key=lambda m: m.rank)
    decided: dict[int, dict] = {}
    if config.near_duplicates:
        for group in _pair_groups(members, config):
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
