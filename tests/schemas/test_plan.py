"""plan_job: what a run does, from its configuration alone."""

from __future__ import annotations

import pytest

from paircurate.schemas.config import ClipConfig, DedupConfig, InputConfig, JobConfig, OutputConfig
from paircurate.schemas.plan import plan_job


def job(text_only: bool = False, clip_model: str = "ViT-B-32", **dedup) -> JobConfig:
    return JobConfig(
        inputs=InputConfig(input=("in.csv",)),
        dedup=DedupConfig(**dedup),
        clip=ClipConfig(clip_model=clip_model, clip_threshold=0.2),
        output=OutputConfig(output="out", text_only=text_only),
    )


def test_a_default_run_scores_and_finds_clusters_by_caption_and_image() -> None:
    plan = plan_job(job())
    assert (plan.scores, plan.finds_clusters, plan.text_only) == (True, True, False)
    assert (plan.caption_keys, plan.image_keys, plan.phash_buckets) == (True, True, False)
    assert plan.clip is not None and plan.clip.clip_threshold == 0.2
    assert plan.parts == "shards"


def test_a_text_only_run_never_scores_nor_builds_image_keys() -> None:
    plan = plan_job(job(text_only=True, drop_image_repeats=True))
    assert (plan.scores, plan.clip, plan.parts) == (False, None, "metadata")
    assert (plan.image_keys, plan.phash_buckets) == (False, False)
    assert plan.finds_clusters is False  # only caption rules need clusters without images


@pytest.mark.parametrize(
    "dedup", [{"drop_caption_repeats": True}, {"caption_cluster_cap": 5}], ids=["repeats", "cap"]
)
def test_a_text_only_run_finds_caption_clusters_when_a_caption_rule_asks(dedup) -> None:
    plan = plan_job(job(text_only=True, **dedup))
    assert plan.finds_clusters and plan.caption_keys and not plan.image_keys


def test_no_rule_no_clusters_and_no_model_no_scores() -> None:
    plan = plan_job(job(clip_model="none", near_duplicates=False))
    assert (plan.finds_clusters, plan.scores, plan.clip, plan.writes_embeddings) == (
        False, False, None, False
    )  # fmt: skip


def test_phash_buckets_only_to_drop_every_image_repeat_perceptually() -> None:
    assert plan_job(job(drop_image_repeats=True)).phash_buckets
    assert not plan_job(job(drop_image_repeats=True, perceptual_images=False)).phash_buckets
    assert plan_job(job(near_duplicates=False, drop_image_repeats=True)).image_keys
    assert not plan_job(job(near_duplicates=False, drop_caption_repeats=True)).image_keys
