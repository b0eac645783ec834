"""Ledger rows decided again under changed options, by the job's own rules, without Beam."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paircurate.schemas.config import (
    BalanceConfig,
    CaptionConfig,
    ClipConfig,
    ConfigError,
    DedupConfig,
    InputConfig,
    JobConfig,
)
from paircurate.transforms.dedup.decide import decide_caption_cluster, ledger_member
from paircurate.transforms.output.revise import (
    Category,
    Coded,
    Revision,
    category,
    revise_batch,
    revise_cluster,
    revised_config,
)
from paircurate.transforms.scoring.clip_filter import judge_score

RUN = JobConfig(inputs=InputConfig(input=("in.parquet",)), clip=ClipConfig(clip_model="ref"))


def coded(values: list[str | None]) -> Coded:
    names = sorted(set(values), key=lambda name: (name is not None, name or ""))
    return Coded(np.array([names.index(value) for value in values]), names)


def revise(revision: Revision, rows: list[dict], cut: float | None = None) -> list:
    """New reasons of ``rows``, with 'deferred' where the cluster pass decides."""
    revised = revise_batch(
        revision,
        coded([row.get("reason") for row in rows]),
        coded([row.get("language") for row in rows]),
        np.array([np.nan if row.get("score") is None else row["score"] for row in rows]),
        np.array([bool(row.get("cluster")) for row in rows]),
        np.array([bool(row.get("copy_dropped")) for row in rows]),
        cut,
    )
    names = revised.reasons.looked_up(np.array(revised.reasons.names, dtype=object))
    return ["deferred" if d else n for n, d in zip(names.tolist(), revised.deferred, strict=True)]


def test_reasons_fall_in_the_jobs_order():
    assert category(None) == category("clip_below_threshold") == Category.OPEN
    assert category("caption_too_short") == category("invalid_url") == Category.SETTLED
    assert category("language") == Category.LANGUAGE
    assert category("download_http_404") == category("excluded") == Category.MEASURED
    assert category("a_reason_of_a_later_version") == Category.MEASURED
    assert category("caption_cluster_cap") == Category.CAPTION_CLUSTER


def test_only_the_decision_options_may_change():
    new = revised_config(RUN, {"clip": {"clip_threshold": 0.3}, "caption": {"languages": ("en",)}})
    assert (new.clip.clip_threshold, new.caption.languages) == (0.3, ("en",))
    assert new.clip.clip_model == "ref" and new.dedup == RUN.dedup
    with pytest.raises(ConfigError, match="--caption-threshold"):
        revised_config(RUN, {"dedup": {"caption_threshold": 0.5}})
    with pytest.raises(ConfigError, match="--clip-threshold must be in -1..1"):
        revised_config(RUN, {"clip": {"clip_threshold": 3.0}})


def test_what_the_ledger_cannot_answer_is_refused():
    unscored = dataclasses.replace(RUN, clip=ClipConfig(clip_model="none"))
    with pytest.raises(ConfigError, match="scored no pairs"):
        Revision(unscored, revised_config(unscored, {"clip": {"clip_threshold": 0.3}}))
    no_clusters = dataclasses.replace(RUN, dedup=DedupConfig(near_duplicates=False))
    with pytest.raises(ConfigError, match="no duplicate clusters"):
        Revision(no_clusters, revised_config(no_clusters, {"dedup": {"caption_cluster_cap": 2}}))
    balanced = dataclasses.replace(RUN, balance=BalanceConfig(balance_entries="builtin:cc3m"))
    with pytest.raises(ConfigError, match="balanced"):
        Revision(balanced, revised_config(balanced, {"caption": {"languages": ("en",)}}))


def test_new_thresholds_judge_kept_and_clip_dropped_rows_only():
    clip = {"clip_threshold_by_lang": ("en=0.28", "default=0.2")}
    revision = Revision(RUN, revised_config(RUN, {"clip": clip}))
    rows = [
        {"language": "en", "score": 0.3},
        {"language": "en", "score": 0.25},
        {"language": "de", "score": 0.25, "reason": "clip_below_threshold"},
        {"language": "de", "score": 0.1, "reason": "near_duplicate"},
        {"language": "de", "score": None},
        {"language": "en", "reason": "download_http_404"},
    ]
    assert revise(revision, rows) == [
        None, "clip_below_threshold", None, "near_duplicate", None, "download_http_404"
    ]  # fmt: skip


def test_the_vectorised_judgement_is_judge_score():
    clip = ClipConfig(
        clip_model="ref", clip_threshold=0.15, clip_threshold_by_lang=("en=0.25", "fr=0.2")
    )
    clip = dataclasses.replace(clip, clip_keep_fraction=0.4)
    revision = Revision(RUN, dataclasses.replace(RUN, clip=clip))
    rng = np.random.default_rng(3)
    rows = [
        {"language": str(rng.choice(["en", "fr", "de", "nolang"])), "score": float(score)}
        for score in rng.uniform(0.1, 0.3, 500).astype(np.float32)
    ]
    expected = [
        judge_score({"clip_score": r["score"], "language": r["language"]}, clip, 0.22).get("reason")
        for r in rows
    ]
    assert revise(revision, rows, cut=0.22) == expected


def test_languages_drop_rows_after_the_caption_rules_and_readmit_none():
    revision = Revision(RUN, revised_config(RUN, {"caption": {"languages": ("en", "nolang")}}))
    rows = [
        {"language": "de", "score": 0.3},
        {"language": "de", "reason": "download_timeout"},
        {"language": "de", "reason": "caption_too_short"},
        {"language": "de", "reason": "url_duplicate"},
        {"language": "en", "reason": "url_duplicate", "copy_dropped": True},
        {"language": "nolang", "score": 0.3},
    ]
    assert revise(revision, rows) == [
        "language", "language", "caption_too_short", "language", "kept_copy_dropped", None,
    ]  # fmt: skip
    narrow = dataclasses.replace(RUN, caption=CaptionConfig(languages=("en",)))
    wider = Revision(narrow, revised_config(narrow, {"caption": {"languages": ("en", "de")}}))
    rows = [{"language": "de", "reason": "language"}, {"language": "fr", "reason": "language"}]
    assert revise(wider, rows) == ["needs_download", "language"]


def test_cluster_members_wait_for_the_cluster_pass_only_when_clusters_may_change():
    rows = [
        {"language": "en", "score": 0.3, "cluster": True},
        {"language": "en", "reason": "near_duplicate", "cluster": True},
        {"language": "en", "reason": "image_duplicate", "cluster": True},
    ]
    same = Revision(RUN, revised_config(RUN, {"clip": {"clip_threshold": 0.2}}))
    assert revise(same, rows) == [None, "near_duplicate", "image_duplicate"]
    capped = Revision(RUN, revised_config(RUN, {"dedup": {"caption_cluster_cap": 1}}))
    assert revise(capped, rows) == ["deferred", "deferred", "image_duplicate"]


def ledger_row(n: int, area: int, reason: str | None = None, **extra) -> dict:
    """A caption cluster member's ledger row (cluster root: uid 1) with its image's area."""
    return {
        "uid": f"{n:032x}", "chunk": 0, "original_width": area, "original_height": 1,
        "phash": f"{n * 0x1111111:016x}", "caption_cluster": f"{1:032x}", "image_cluster": None,
        "reason": reason, "language": "en", "clip_score": 0.3, "duplicate_of": None,
        "semantic_cluster": None, "deferred": True, **extra,
    }  # fmt: skip


def test_a_cluster_is_decided_again_by_decide_caption_cluster():
    rows = [ledger_row(n, 100 * n) for n in range(1, 6)]
    revision = Revision(RUN, revised_config(RUN, {"dedup": {"caption_cluster_cap": 2}}))
    found = revise_cluster(revision, rows, None)
    members = [ledger_member(row) for row in rows]
    expected = {d["uid"]: d["reason"] for d in decide_caption_cluster(members, revision.new.dedup)}
    assert found == expected
    assert sorted(found.values(), key=str) == [None] * 2 + ["caption_cluster_cap"] * 3
    assert found[f"{5:032x}"] is None and found[f"{4:032x}"] is None  # the largest images


def test_an_unchanged_cluster_keeps_its_recorded_decisions():
    rows = [ledger_row(1, 100), ledger_row(2, 50, "caption_cluster_cap")]
    revision = Revision(RUN, revised_config(RUN, {"clip": {"clip_threshold": 0.35}}))
    found = revise_cluster(revision, rows, None)
    assert found == {f"{1:032x}": "clip_below_threshold", f"{2:032x}": "caption_cluster_cap"}


def test_a_member_the_languages_remove_frees_its_cluster():
    keeper = ledger_row(1, 100, language="de", deferred=False)
    capped = ledger_row(2, 50, "caption_cluster_cap")
    cap_one = dataclasses.replace(RUN, dedup=DedupConfig(caption_cluster_cap=1))
    revision = Revision(cap_one, revised_config(cap_one, {"caption": {"languages": ("en",)}}))
    assert revise_cluster(revision, [keeper, capped], None) == {f"{2:032x}": None}


def test_what_the_ledger_does_not_hold_is_undetermined():
    hidden = ledger_row(2, 50, "near_duplicate", duplicate_of=f"{9:032x}")  # 9: not recorded
    revision = Revision(RUN, revised_config(RUN, {"dedup": {"caption_cluster_cap": 1}}))
    found = revise_cluster(revision, [ledger_row(1, 100), hidden], None)
    assert set(found.values()) == {"cluster_member_unrecorded"}
    semantic = dataclasses.replace(
        RUN, dedup=DedupConfig(semantic_dedup=True, caption_cluster_cap=1)
    )
    revision = Revision(semantic, revised_config(semantic, {"dedup": {"caption_cluster_cap": 2}}))
    freed = ledger_row(2, 50, "caption_cluster_cap", semantic_cluster=f"{2:032x}")
    found = revise_cluster(revision, [ledger_row(1, 100), freed], None)
    assert found == {f"{1:032x}": None, f"{2:032x}": "semantic_unknown"}
