"""Cluster decisions: the pair rule, the repeat switches, the cap and the keeper rule."""

from __future__ import annotations

import itertools
from dataclasses import replace

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.decide import (
    Member,
    annotate,
    decide_caption_cluster,
    drop_image_repeats,
)

CONFIG = DedupConfig()


def member(n: int, area: int, phash: int, caption: str | None = "c0", image: str | None = None):
    return Member((f"{n:032x}", n % 3, area, phash), caption_root=caption, image_root=image)


def outcome(decisions: list[dict]) -> dict[str, tuple]:
    return {d["uid"][-2:]: (d["reason"], (d["duplicate_of"] or "")[-2:]) for d in decisions}


def test_same_image_and_caption_cluster_keeps_the_largest_image():
    members = [member(1, 100, 0, image="i1"), member(2, 400, 0, image="i1"), member(3, 100, 0)]
    decisions = list(decide_caption_cluster(members, CONFIG))
    assert outcome(decisions) == {
        "02": (None, ""),
        "01": ("near_duplicate", "02"),
        "03": ("near_duplicate", "02"),  # no image cluster, but the same pHash
    }
    assert {d["cluster_id"][-2:] for d in decisions} == {"02"}
    by_uid = {d["uid"][-2:]: d for d in decisions}
    assert by_uid["01"]["reason_detail"] == (
        f"the same image and a near-duplicate caption of the kept pair {2:032x}"
    )


def test_ties_go_to_the_smallest_uid_whatever_the_order():
    members = [member(n, 100, 0b1011, image="i") for n in (7, 4, 9)]
    for order in itertools.permutations(members):
        decisions = list(decide_caption_cluster(list(order), CONFIG))
        assert outcome(decisions)["04"] == (None, "")


def test_template_caption_over_different_images_stays():
    members = [member(n, 100, (0xFFFF << (4 * n)) & (2**63 - 1)) for n in range(1, 6)]
    decisions = list(decide_caption_cluster(members, CONFIG))
    assert {d["reason"] for d in decisions} == {None}
    assert {d["caption_cluster"] for d in decisions} == {"c0"}
    assert {d["cluster_id"] for d in decisions} == {None}


def test_phash_distance_is_the_limit_of_a_near_image():
    base = 0b1010_1010_1010
    close = member(2, 100, base ^ 0b111111)  # 6 bits
    far = member(3, 100, base ^ (0b1111111 << 20))  # 7 bits from base, 13 from close
    decisions = list(decide_caption_cluster([member(1, 100, base), close, far], CONFIG))
    assert outcome(decisions) == {
        "01": (None, ""),
        "02": ("near_duplicate", "01"),
        "03": (None, ""),
    }
    off = replace(CONFIG, perceptual_images=False)
    assert {
        d["reason"] for d in list(decide_caption_cluster([member(1, 100, base), close], off))
    } == {None}


def test_text_only_members_are_never_near_duplicates_by_pixels():
    members = [member(1, 0, 0), member(2, 0, 0)]  # no image: area 0
    assert {d["reason"] for d in list(decide_caption_cluster(members, CONFIG))} == {None}


def test_caption_repeats_and_the_cap():
    members = [member(n, 100 * n, (0xFFFF << (10 * n)) & (2**63 - 1)) for n in range(1, 6)]
    repeats = list(decide_caption_cluster(members, replace(CONFIG, drop_caption_repeats=True)))
    assert outcome(repeats) == {
        "05": (None, ""),
        **{f"{n:02x}": ("caption_duplicate", "05") for n in range(1, 5)},
    }
    capped = list(decide_caption_cluster(members, replace(CONFIG, caption_cluster_cap=2)))
    assert outcome(capped) == {
        "05": (None, ""),
        "04": (None, ""),
        **{f"{n:02x}": ("caption_cluster_cap", "") for n in range(1, 4)},
    }
    assert {d["reason_detail"] for d in capped if d["reason"]} == {
        "caption cluster of 5 pairs keeps the best 2"
    }


def test_the_cap_counts_only_what_the_pair_rule_left():
    members = [member(n, 100, 0, image="same") for n in range(1, 4)] + [member(9, 50, 0xFFFFFFFF)]
    decisions = list(decide_caption_cluster(members, replace(CONFIG, caption_cluster_cap=2)))
    assert (
        sorted(d["reason"] or "kept" for d in decisions)
        == ["kept", "kept"] + ["near_duplicate"] * 2
    )


def test_image_repeats_keep_one_pair_per_image():
    members = [
        member(1, 100, 0, image="i"),
        member(2, 900, 0, image="i"),
        member(3, 100, 0, "c9", "i"),
    ]
    dropped, survivors = drop_image_repeats(members)
    dropped = list(dropped)
    assert [s.uid[-2:] for s in survivors] == ["02"]
    assert outcome(dropped) == {"01": ("image_duplicate", "02"), "03": ("image_duplicate", "02")}
    assert [d["caption_cluster"] for d in dropped] == ["c0", "c9"]


def test_annotations_keep_the_row():
    (only,) = annotate([member(1, 100, 0, caption=None, image="i")])
    assert (only["reason"], only["image_cluster"], only["chunk"]) == (None, "i", 1)
