"""What made a score or an embedding: the record, where it is kept, and the comparison.

Two embeddings can only be compared when the same model made them: the same
architecture and weights, the same image preprocessing and the same text
context. ``EmbeddingProvenance`` records exactly that, plus the precision of the
forward pass and of what was stored. A run writes it into stats.json
(``clip_provenance``), into the schema metadata of every Parquet it writes
(``PARQUET_KEY``) and, with --write-embeddings, beside the vectors
(DIR/embeddings/provenance.json).

Anything that puts embeddings of two origins side by side (search, semantic
dedup, decontamination against an evaluation set) calls ``require_same_model``
first: it raises ``ProvenanceMismatch`` naming both models and what differs.
Precision is recorded but not compared: float16 storage of a float32 forward
changes the vectors far less than any model change does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow as pa

from paircurate.schemas.config import ClipConfig
from paircurate.transforms.output.storage import Files

# Where the record is kept: stats.json's key, the Parquet schema metadata key, the file name.
STATS_KEY = "clip_provenance"
PARQUET_KEY = b"paircurate.clip_provenance"
FILE_NAME = "provenance.json"

COMPUTE_PRECISION = "float32"  # ClipScorer runs every forward in fp32
STORED_PRECISION = "float16"  # --write-embeddings stores float16 vectors
HASH_BUFFER = 8 << 20

# The fields that must agree for two embeddings to be comparable.
IDENTITY = (
    "model",
    "pretrained",
    "checkpoint_sha256",
    "image_size",
    "image_mean",
    "image_std",
    "resize_mode",
    "interpolation",
    "context_length",
)


class ProvenanceMismatch(ValueError):
    """Embeddings of two different models were about to be compared."""


@dataclass(frozen=True)
class EmbeddingProvenance:
    """The model, weights, preprocessing and precision behind a set of embeddings.

    ``pretrained`` is the open_clip tag (None with a checkpoint file, whose
    sha256 is ``checkpoint_sha256`` instead); the image fields are open_clip's
    eval preprocessing (size as (height, width), per-channel mean and std,
    resize mode and interpolation); ``context_length`` is the tokenizer's.
    """

    model: str
    pretrained: str | None
    checkpoint_sha256: str | None
    image_size: tuple[int, int]
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    resize_mode: str
    interpolation: str
    context_length: int
    compute_precision: str = COMPUTE_PRECISION
    stored_precision: str = STORED_PRECISION

    def to_json(self) -> dict[str, Any]:
        return {name: list(v) if isinstance(v, tuple) else v for name, v in asdict(self).items()}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> EmbeddingProvenance:
        known = {option.name for option in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in document.items()}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> EmbeddingProvenance:
        return cls.from_json(json.loads(data))

    def weights(self) -> str:
        """The weights in words: the tag, or the checkpoint's sha256 (first 12 digits)."""
        if self.checkpoint_sha256:
            return f"checkpoint sha256 {self.checkpoint_sha256[:12]}"
        return f"pretrained {self.pretrained}" if self.pretrained else "weights from the hub id"

    def describe(self) -> str:
        height, width = self.image_size
        return (
            f"{self.model} ({self.weights()}; images {height}x{width} {self.resize_mode} "
            f"{self.interpolation}; {self.context_length} text tokens)"
        )


def differences(first: EmbeddingProvenance, second: EmbeddingProvenance) -> list[str]:
    """The identity fields on which two records disagree (empty: comparable)."""
    return [name for name in IDENTITY if getattr(first, name) != getattr(second, name)]


def require_same_model(
    stored: EmbeddingProvenance,
    query: EmbeddingProvenance,
    stored_what: str = "the stored embeddings",
    query_what: str = "the query model",
) -> None:
    """Raise ProvenanceMismatch, naming both models, unless their embeddings are comparable."""
    differ = differences(stored, query)
    if differ:
        raise ProvenanceMismatch(
            f"{stored_what} were made by {stored.describe()}, but {query_what} is "
            f"{query.describe()}; they differ in {', '.join(differ)}, so their embeddings "
            "cannot be compared. Use the model that made the embeddings (the run's "
            "--clip-model, --clip-pretrained and --clip-checkpoint), or embed again with "
            "the other model."
        )


def checkpoint_file(config: ClipConfig) -> str | None:
    """The weights file ``config`` loads, if the weights come from a file and not a tag."""
    from paircurate.transforms.scoring import reference_scorer

    if config.clip_checkpoint:
        return config.clip_checkpoint
    if config.clip_model == reference_scorer.MODEL_NAME:
        return str(reference_scorer.CHECKPOINT_PATH)
    tag = config.clip_pretrained
    return tag if tag and Path(tag).is_file() else None


def sha256_of(files: Files, path: str) -> str:
    digest = hashlib.sha256()
    with files.open_read(path) as stream:
        while block := stream.read(HASH_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def provenance_of(
    config: ClipConfig, signature: tuple[tuple[str, Any], ...], context_length: int, files: Files
) -> EmbeddingProvenance:
    """The record of the model ``config`` names, with the preprocessing ``signature`` it uses.

    ``signature`` and ``context_length`` are those of ``ClipInputs`` (or a loaded
    ``ClipScorer.inputs``); a checkpoint file is read through ``files`` to hash it.
    """
    preprocess = dict(signature)
    checkpoint = checkpoint_file(config)
    return EmbeddingProvenance(
        model=config.clip_model,
        pretrained=None if checkpoint else (config.clip_pretrained or None),
        checkpoint_sha256=sha256_of(files, checkpoint) if checkpoint else None,
        image_size=tuple(int(side) for side in preprocess["size"]),
        image_mean=tuple(float(value) for value in preprocess["mean"]),
        image_std=tuple(float(value) for value in preprocess["std"]),
        resize_mode=str(preprocess.get("resize_mode", "")),
        interpolation=str(preprocess.get("interpolation", "")),
        context_length=int(context_length),
    )


def config_provenance(config: ClipConfig, files: Files) -> EmbeddingProvenance:
    """The record of ``config``'s model without loading its weights (what a launcher can do)."""
    from paircurate.transforms.scoring.clip import load_clip_inputs

    inputs = load_clip_inputs(config)
    return provenance_of(config, inputs.signature, inputs.context_length, files)


def stats_provenance(stats: dict[str, Any]) -> EmbeddingProvenance | None:
    """The record a run's stats.json holds, or None for a run that did not score."""
    document = stats.get(STATS_KEY)
    return EmbeddingProvenance.from_json(document) if document else None


def with_provenance(schema: pa.Schema, run_info: dict[str, Any]) -> pa.Schema:
    """``schema`` with the run's record in its metadata, where the run scores (else as is)."""
    document = run_info.get(STATS_KEY)
    if not document:
        return schema
    record = EmbeddingProvenance.from_json(document)
    return schema.with_metadata({**(schema.metadata or {}), PARQUET_KEY: record.to_bytes()})


def parquet_provenance(schema: pa.Schema) -> EmbeddingProvenance | None:
    """The record in a shard or ledger Parquet's schema metadata, or None."""
    data = (schema.metadata or {}).get(PARQUET_KEY)
    return EmbeddingProvenance.from_bytes(data) if data else None
