"""The provenance record: what it holds, where it is kept, and the refusal to compare models."""

from __future__ import annotations

import dataclasses
import hashlib

import pyarrow as pa
import pytest

from paircurate.pipeline import filesystem as fs
from paircurate.schemas.config import ClipConfig
from paircurate.transforms.embeddings.provenance import (
    PARQUET_KEY,
    STATS_KEY,
    EmbeddingProvenance,
    ProvenanceMismatch,
    config_provenance,
    differences,
    parquet_provenance,
    require_same_model,
    stats_provenance,
    with_provenance,
)
from paircurate.transforms.scoring import reference_scorer


@pytest.fixture(scope="module")
def reference() -> EmbeddingProvenance:
    return config_provenance(ClipConfig(clip_model="paircurate-ref"), fs.FILES)


def test_the_reference_scorer_is_recorded_by_its_checkpoint_sha256(reference):
    digest = hashlib.sha256(reference_scorer.CHECKPOINT_PATH.read_bytes()).hexdigest()
    assert reference.model == "paircurate-ref"
    assert reference.checkpoint_sha256 == digest and reference.pretrained is None
    assert reference.image_size == (64, 64) and reference.context_length == 77
    assert reference.image_mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert reference.image_std == pytest.approx((0.26862954, 0.26130258, 0.27577711))
    assert (reference.resize_mode, reference.interpolation) == ("shortest", "bicubic")
    assert (reference.compute_precision, reference.stored_precision) == ("float32", "float16")


def test_a_tagged_model_is_recorded_by_its_tag_without_loading_weights():
    record = config_provenance(ClipConfig(clip_model="ViT-B-32"), fs.FILES)
    assert record.pretrained == "laion2b_s34b_b79k" and record.checkpoint_sha256 is None
    assert record.image_size == (224, 224)


def test_the_record_round_trips_through_json_bytes_stats_and_parquet_metadata(reference):
    assert EmbeddingProvenance.from_json(reference.to_json()) == reference
    assert EmbeddingProvenance.from_bytes(reference.to_bytes()) == reference
    assert stats_provenance({STATS_KEY: reference.to_json()}) == reference
    assert stats_provenance({}) is None
    schema = pa.schema([("uid", pa.string())], metadata={b"other": b"kept"})
    tagged = with_provenance(schema, {STATS_KEY: reference.to_json()})
    assert tagged.metadata[b"other"] == b"kept" and PARQUET_KEY in tagged.metadata
    assert parquet_provenance(tagged) == reference
    assert with_provenance(schema, {}) is schema and parquet_provenance(schema) is None


def test_precision_alone_does_not_make_embeddings_incomparable(reference):
    half = dataclasses.replace(reference, compute_precision="float16")
    assert differences(reference, half) == []
    require_same_model(reference, half)


def test_another_model_is_refused_with_both_named(reference):
    other = config_provenance(ClipConfig(clip_model="ViT-B-32"), fs.FILES)
    with pytest.raises(ProvenanceMismatch) as raised:
        require_same_model(reference, other, "the embeddings of RUN", "the query model")
    message = str(raised.value)
    assert "the embeddings of RUN were made by paircurate-ref" in message
    assert "the query model is ViT-B-32 (pretrained laion2b_s34b_b79k" in message
    assert f"checkpoint sha256 {reference.checkpoint_sha256[:12]}" in message
    assert "differ in model, pretrained, checkpoint_sha256, image_size" in message


def test_other_weights_of_the_same_architecture_are_refused(reference):
    retrained = dataclasses.replace(reference, checkpoint_sha256="0" * 64)
    assert differences(reference, retrained) == ["checkpoint_sha256"]
    with pytest.raises(ProvenanceMismatch, match="checkpoint sha256 000000000000"):
        require_same_model(reference, retrained)
