"""The compliance DoFns called directly: eval images embedded, pool embeddings matched."""

from __future__ import annotations

import numpy as np
import pytest

from paircurate.pipeline.compliance.exclude import CosineMatchDoFn, EmbedEvalSetDoFn
from paircurate.schemas.config import (
    ClipConfig,
    ComplianceConfig,
    ConfigError,
    InputConfig,
    JobConfig,
)
from paircurate.synthweb.evalset import write_evalset
from paircurate.transforms.compliance.rules import Sources

UID = "0123456789abcdef0123456789abcdef"


def test_eval_images_are_embedded_by_the_scoring_model_and_numbered_from_one(tmp_path):
    write_evalset(tmp_path, n_images=3, seed=2)
    embed = EmbedEvalSetDoFn(ClipConfig(clip_model="paircurate-ref", clip_device="cpu"), 2)
    embed.setup()
    found = list(embed.process((4, str(tmp_path))))
    assert [key for key, _ in found] == ["4:1", "4:2", "4:3"]
    vectors = np.stack([np.frombuffer(vector, np.float32) for _, vector in found])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)


def test_a_pool_embedding_near_an_eval_one_is_contamination():
    sources = Sources.of(ComplianceConfig(decontaminate=("evalset",), decontam_cosine=0.9))
    eval_vectors = np.eye(3, dtype=np.float32)
    embedded = [(f"0:{i + 1}", vector.tobytes()) for i, vector in enumerate(eval_vectors)]
    names = {"0:2": "evalset/e.tar:b.jpg"}
    match = CosineMatchDoFn(sources, 0.9)
    near = np.array([0.1, 0.99, 0.0], np.float16)
    record = {"uid": UID, "image_embedding": near.tobytes()}
    ((chunk, decision),) = match.process((5, record), embedded, names)
    assert chunk == 5 and decision["chunk"] == 5 and decision["uid"] == UID
    assert decision["reason"] == "eval_contamination"
    assert decision["compliance_match"] == "evalset/e.tar:b.jpg"
    assert decision["reason_detail"].startswith("CLIP image cosine 0.99")
    far = {"uid": UID, "image_embedding": np.array([0.6, 0.6, 0.5], np.float16).tobytes()}
    assert list(match.process((5, far), embedded, names)) == []


def test_embedding_decontamination_needs_scoring():
    compliance = ComplianceConfig(decontaminate=("e",), decontam_cosine=0.95)
    with pytest.raises(ConfigError, match="--decontam-cosine compares CLIP image embeddings"):
        JobConfig(InputConfig(input=("a.csv",)), clip=ClipConfig(clip_model="none"),
                  compliance=compliance)  # fmt: skip
