"""What a run does, decided once from its ``JobConfig``.

The job graph, the dedup keys and the Write step all ask the plan instead of
combining options themselves, so that one rule (say, a text-only run never
scores) is written in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from paircurate.schemas.config import ClipConfig, ConfigError, JobConfig


@dataclass(frozen=True)
class JobPlan:
    """Which steps run, which dedup keys are built and which CLIP thresholds hold."""

    text_only: bool
    """Metadata stages only: nothing is downloaded, Write puts rows in DIR/metadata/."""
    scores: bool
    """Pairs are scored with CLIP (never in a text-only run)."""
    finds_clusters: bool
    """The Decide step runs: some rule needs duplicate clusters."""
    caption_keys: bool
    """Decide buckets captions by their MinHash bands."""
    image_keys: bool
    """Decide buckets images by their exact hashes."""
    phash_buckets: bool
    """Decide buckets images by pHash bands too (only to drop every repeat of an image)."""
    clip: ClipConfig | None
    """The CLIP thresholds Write judges scores against; None when nothing is scored."""
    semantic_dedup: bool = False
    """SemanticDedup runs over the Score step's image embeddings (``pipeline.embeddings``)."""

    @property
    def parts(self) -> str:
        """The folder of the per-chunk outputs: shards, or metadata for a text-only run."""
        return "metadata" if self.text_only else "shards"

    @property
    def writes_embeddings(self) -> bool:
        return self.clip is not None and self.clip.write_embeddings

    @property
    def image_embeddings(self) -> bool:
        """Score records carry each pair's image embedding (to write, or for semantic dedup)."""
        return self.writes_embeddings or self.semantic_dedup


def plan_job(config: JobConfig) -> JobPlan:
    """The plan of a run of ``config``."""
    dedup = config.dedup
    text_only = config.output.text_only
    scores = config.clip.scores and not text_only
    if text_only:
        finds_clusters = dedup.drop_caption_repeats or dedup.caption_cluster_cap > 0
    else:
        finds_clusters = dedup.finds_clusters
    with_images = not text_only
    if dedup.semantic_dedup and not scores:
        why = "--text-only downloads no image" if text_only else "--clip-model is none"
        raise ConfigError(
            f"--semantic-dedup compares CLIP image embeddings, but {why}: name a CLIP model "
            "(--clip-model) and drop --text-only, or drop --semantic-dedup"
        )
    return JobPlan(
        text_only=text_only,
        scores=scores,
        finds_clusters=finds_clusters,
        caption_keys=True,
        image_keys=with_images and (dedup.near_duplicates or dedup.drop_image_repeats),
        phash_buckets=with_images and dedup.drop_image_repeats and dedup.perceptual_images,
        clip=config.clip if scores else None,
        semantic_dedup=dedup.semantic_dedup,
    )
