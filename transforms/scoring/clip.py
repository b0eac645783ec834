"""CLIP scoring through open_clip's own API: load a model once, embed and score batches.

``load_clip(config)`` turns a ``ClipConfig`` into a ``ClipScorer``. Everything the
scorer does is open_clip's: the model from ``create_model_and_transforms``, its eval
transform for images, ``get_tokenizer`` for captions, ``encode_image`` /
``encode_text`` for features. Scores are therefore the numbers a user gets from a
plain open_clip loop, which is what thresholds published by LAION and DataComp mean.

Loading fails fast with a ``ClipLoadError`` that says what went wrong and how to
supply weights locally, rather than with open_clip's retry loop against the Hub
(minutes when offline) or its "unknown tag" wording. Weights are first looked up
in the local caches with huggingface_hub's public ``try_to_load_from_cache``
(``clip_names.cached_weights``); found there, open_clip gets the file (with the
tag's preprocessing) or the cached snapshot as a ``local-dir:``, and no request
is made. Only weights that are not cached are left to open_clip's download, and
only when the Hub answers a 3-second connect. The Hub's own settings are never
changed.

``ClipConfig`` is a frozen dataclass of plain values and pickles; a Beam
ModelHandler carries it to the workers and calls ``load_clip`` in ``load_model()``.
A ``ClipScorer`` holds the model itself and is meant to be built on the worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.pretrained import download_pretrained_from_hf
from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
from PIL import Image

from paircurate.schemas.config import ClipConfig
from paircurate.transforms.scoring import reference_scorer
from paircurate.transforms.scoring.clip_names import (
    HF_HUB_PREFIX,
    HUB_CONFIG_NAME,
    LOCAL_DIR_PREFIX,
    ClipLoadError,
    cached_hub_folder,
    cached_weights,
    check_model_name,
    check_pretrained_tag,
    check_text_library,
    is_model_id,
    local_weights_hint,
    preprocess_overrides,
    pretrained_config,
)
from paircurate.transforms.scoring.clip_names import hub_host as _hub_host
from paircurate.transforms.scoring.clip_names import hub_reachable as _hub_reachable

logger = logging.getLogger(__name__)

Preprocess = Callable[[Image.Image], torch.Tensor]
Tokenizer = Callable[..., torch.Tensor]
# What identifies an image transform: open_clip's preprocessing config, as sorted items.
PreprocessSignature = tuple[tuple[str, Any], ...]

__all__ = [
    "ClipInputs", "ClipLoadError", "ClipScorer", "PreparedBatch", "ScoreBatch",
    "load_clip", "load_clip_inputs", "local_weights_hint", "resolve_device",
]  # fmt: skip


@dataclass(frozen=True)
class ScoreBatch:
    """What scoring a batch of pairs measured, row for row in the input order.

    ``scores`` are cosine similarities (float32, shape (n,)); the embeddings are
    L2-normalised float32 of shape (n, embed_dim); ``truncated`` says which captions
    were longer than the model's context and were cut to fit.
    """

    scores: np.ndarray
    image_embeddings: np.ndarray
    text_embeddings: np.ndarray
    truncated: list[bool]


@dataclass(frozen=True)
class PreparedBatch:
    """A batch of pairs made ready for the model where they were read: only arrays travel on.

    ``pixels`` is the model's eval transform of each image (float32, (n, 3, H, W)),
    ``tokens`` its tokenizer's output (int64, (n, context)); ``truncated`` as in
    ScoreBatch. ``preprocess`` names the transform that made the pixels, so that a
    model given pixels made for another refuses them instead of scoring them.
    """

    pixels: np.ndarray
    tokens: np.ndarray
    truncated: list[bool]
    preprocess: PreprocessSignature

    def __len__(self) -> int:
        return len(self.truncated)


def preprocess_signature(config: dict[str, Any]) -> PreprocessSignature:
    """open_clip's preprocessing config as a comparable value (size always as (H, W))."""
    values = dict(config)
    size = values.get("size", 224)
    values["size"] = (size, size) if isinstance(size, int) else tuple(size)
    return tuple(
        sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items())
    )


class ClipInputs:
    """A model's own eval transform and tokenizer, without its weights.

    Built on every worker process (``load_clip_inputs``), so that decoding,
    resizing and tokenizing run where the pairs are read, and only ready arrays
    go to the one shared copy of the model.
    """

    def __init__(
        self,
        preprocess: Preprocess,
        tokenizer: Tokenizer,
        context_length: int,
        signature: PreprocessSignature,
    ) -> None:
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.context_length, self.signature = context_length, signature

    def preprocess_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own eval transform of each image, stacked into (n, 3, H, W)."""
        if not images:
            return torch.zeros((0, 3, *dict(self.signature)["size"]))
        return torch.stack([self.preprocess(image) for image in images])

    def tokenize(self, captions: Sequence[str]) -> tuple[torch.Tensor, list[bool]]:
        """open_clip's tokens of each caption, and whether each needed more than the context.

        The tokenizer silently cuts long captions to ``context_length`` (start and end
        tokens included); the flag lets the ledger say which scores saw a cut caption.
        """
        captions = list(captions)
        tokens = self.tokenizer(captions)
        return tokens, _truncated(self.tokenizer, captions, tokens, self.context_length)

    def prepare(self, images: Sequence[Image.Image], captions: Sequence[str]) -> PreparedBatch:
        """Pixels and tokens of each pair, as numpy arrays that pickle compactly."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        tokens, truncated = self.tokenize(captions)
        pixels = self.preprocess_images(images)
        return PreparedBatch(pixels.numpy(), tokens.numpy(), truncated, self.signature)


# --- the scorer ---------------------------------------------------------------------------


class ClipScorer:
    """An open_clip model in eval mode with its own eval transform and tokenizer.

    Every forward runs under ``torch.inference_mode()`` in fp32; inputs are moved to
    ``device`` and outputs come back as numpy on the CPU. Work is split into chunks
    of ``batch_size`` rows so that memory stays bounded whatever the caller passes.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Preprocess,
        tokenizer: Tokenizer,
        device: torch.device,
        batch_size: int,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.embed_dim = _embed_dim(model)
        self.context_length = int(
            getattr(tokenizer, "context_length", None) or model.context_length
        )
        config = getattr(model.visual, "preprocess_cfg", None) or {"size": _input_size(model)}
        self.inputs = ClipInputs(
            preprocess, tokenizer, self.context_length, preprocess_signature(config)
        )

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        preprocess: Preprocess,
        tokenizer: Tokenizer,
        device: str | torch.device,
        batch_size: int,
    ) -> ClipScorer:
        """A scorer around a model the caller already built (benchmarks, tests)."""
        device = torch.device(device)
        return cls(model.to(device), preprocess, tokenizer, device, batch_size)

    def preprocess_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own eval transform of each image, stacked into (n, 3, H, W)."""
        return self.inputs.preprocess_images(images)

    def embed_images(self, pixels: torch.Tensor) -> np.ndarray:
        """L2-normalised image features (float32, (n, embed_dim)) of preprocessed pixels."""
        return self._embed(self.model.encode_image, pixels)

    def tokenize(self, captions: Sequence[str]) -> tuple[torch.Tensor, list[bool]]:
        """open_clip's tokens of each caption, and whether each was cut (``ClipInputs``)."""
        return self.inputs.tokenize(captions)

    def embed_texts(self, tokens: torch.Tensor) -> np.ndarray:
        """L2-normalised text features (float32, (n, embed_dim)) of tokenized captions."""
        return self._embed(self.model.encode_text, tokens)

    def score(self, images: Sequence[Image.Image], captions: Sequence[str]) -> ScoreBatch:
        """Embed each image and its own caption, and their cosine similarity."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        image_parts, text_parts, truncated = [], [], []
        for start in range(0, len(images), self.batch_size):
            stop = start + self.batch_size
            prepared = self.inputs.prepare(images[start:stop], captions[start:stop])
            image_parts.append(self.embed_images(torch.from_numpy(prepared.pixels)))
            text_parts.append(self.embed_texts(torch.from_numpy(prepared.tokens)))
            truncated.extend(prepared.truncated)
        return self._scored(image_parts, text_parts, truncated)

    def score_prepared(self, batch: PreparedBatch) -> ScoreBatch:
        """Embed and compare a batch that ``ClipInputs.prepare`` made, maybe in another process.

        Raises ValueError when the pixels were made by another transform than this
        model's: scores of such pixels would be wrong without any sign of it.
        """
        if batch.preprocess != self.inputs.signature:
            raise ValueError(
                f"pixels made with preprocessing {dict(batch.preprocess)} reached a model that "
                f"expects {dict(self.inputs.signature)}; the workers' ClipInputs and the model "
                "must come from the same --clip-model and --clip-pretrained"
            )
        image_embeddings = self.embed_images(torch.from_numpy(batch.pixels))
        text_embeddings = self.embed_texts(torch.from_numpy(batch.tokens))
        return self._scored([image_embeddings], [text_embeddings], list(batch.truncated))

    def _scored(
        self, image_parts: list[np.ndarray], text_parts: list[np.ndarray], truncated: list[bool]
    ) -> ScoreBatch:
        image_embeddings = self._concatenate(image_parts)
        text_embeddings = self._concatenate(text_parts)
        scores = np.einsum("nd,nd->n", image_embeddings, text_embeddings).astype(np.float32)
        return ScoreBatch(scores, image_embeddings, text_embeddings, truncated)

    def _embed(self, encode: Callable[..., torch.Tensor], inputs: torch.Tensor) -> np.ndarray:
        """Run one tower over ``inputs`` in chunks of ``batch_size``, normalised, as numpy."""
        parts = []
        with torch.inference_mode():
            for chunk in inputs.split(self.batch_size):
                features = encode(chunk.to(self.device, non_blocking=True), normalize=True)
                parts.append(features.float().cpu().numpy())
        return self._concatenate(parts)

    def _concatenate(self, parts: list[np.ndarray]) -> np.ndarray:
        if not parts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)


def _embed_dim(model: torch.nn.Module) -> int:
    """Width of the joint embedding: the text projection's, else a tower's ``output_dim``.

    CLIP keeps the projection on the model; CustomTextCLIP (Hugging Face text towers)
    keeps it in the text tower, whose ``output_dim`` every open_clip text tower has.
    """
    projection = getattr(model, "text_projection", None)
    if isinstance(projection, torch.Tensor):
        return int(projection.shape[-1])
    for tower in (getattr(model, "text", None), model.visual):
        if hasattr(tower, "output_dim"):
            return int(tower.output_dim)
    raise ValueError(f"cannot tell the embedding width of {type(model).__name__}")


def _input_size(model: torch.nn.Module) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)
    return (size, size) if isinstance(size, int) else tuple(size)


def _truncated(
    tokenizer: Tokenizer, captions: list[str], tokens: torch.Tensor, limit: int
) -> list[bool]:
    """Which captions need more than ``limit`` tokens, start and end tokens included.

    open_clip's SimpleTokenizer exposes ``encode`` (cleaning + BPE, no special tokens)
    and pads with 0: a row that ends in padding fitted, so only full rows are counted
    again. Hugging Face tokenizers sit behind ``.tokenizer`` and count their own
    special tokens.
    """
    if hasattr(tokenizer, "encode"):
        full = (tokens[:, -1] != 0).tolist()
        return [
            is_full and len(tokenizer.encode(caption)) + 2 > limit
            for caption, is_full in zip(captions, full, strict=True)
        ]
    return [
        len(tokenizer.tokenizer(caption, truncation=False)["input_ids"]) > limit
        for caption in captions
    ]


# --- loading -----------------------------------------------------------------------------


def resolve_device(choice: str) -> torch.device:
    """auto -> cuda when torch sees a GPU, else cpu, and says which; cuda without a GPU fails."""
    has_cuda = torch.cuda.is_available()
    if choice == "auto":
        if has_cuda:
            logger.info("--clip-device auto: scoring on cuda (%s)", torch.cuda.get_device_name())
            return torch.device("cuda")
        logger.info("--clip-device auto: torch sees no CUDA GPU here, scoring on the CPU")
        return torch.device("cpu")
    if choice == "cuda" and not has_cuda:
        raise ClipLoadError(
            "--clip-device cuda: torch sees no CUDA GPU on this machine "
            "(torch.cuda.is_available() is False); use --clip-device auto or cpu, or run "
            "scoring where there is one (--clip-accelerator on Dataflow)."
        )
    return torch.device(choice)


def load_clip(config: ClipConfig) -> ClipScorer:
    """The scorer that ``config`` names, in eval mode on its device.

    Raises ClipLoadError, quickly, when the model cannot be loaded; the caller checks
    ``config.scores`` first, since ``--clip-model none`` has nothing to load.
    """
    name = config.clip_model
    if not config.scores:
        raise ClipLoadError(
            "--clip-model none turns CLIP scoring off: there is no model to load "
            "(check ClipConfig.scores before calling load_clip)."
        )
    device = resolve_device(config.clip_device)
    pretrained = _weights_source(config)
    model, preprocess, tokenizer = _create(name, pretrained, device)
    logger.info("loaded CLIP %s (%s) on %s", name, pretrained or "hub", device)
    return ClipScorer(model, preprocess, tokenizer, device, config.clip_batch_size)


def load_clip_inputs(config: ClipConfig) -> ClipInputs:
    """The image transform and tokenizer of the model ``config`` names, without its weights.

    The preprocessing config is worked out as open_clip's ``create_model`` does it:
    its defaults, then what the pretrained tag (or the hf-hub / local-dir config)
    records, then the vision tower's image size. A model checks the result against
    its own on every batch (``ClipScorer.score_prepared``).
    """
    name = config.clip_model
    source = name
    if is_model_id(name):
        source = _model_id_source(name)
        model_config, overlay = _id_configs(name, source)
    else:
        if name == reference_scorer.MODEL_NAME:
            reference_scorer.register_reference_model()
        check_model_name(name)
        model_config = open_clip.get_model_config(name.replace("/", "-"))
        overlay = {} if _loads_a_file(config) else pretrained_config(name, config.clip_pretrained)
    check_text_library(name, model_config)
    values = merge_preprocess_dict(asdict(PreprocessCfg()), overlay)
    values["size"] = model_config["vision_cfg"].get("image_size", 224)
    signature = preprocess_signature(values)
    cfg = PreprocessCfg(**{**values, "size": dict(signature)["size"]})
    preprocess = image_transform_v2(cfg, is_train=False)
    tokenizer = _tokenizer(name, source)
    context = getattr(tokenizer, "context_length", None)
    context = context or model_config["text_cfg"].get("context_length", 77)
    return ClipInputs(preprocess, tokenizer, int(context), signature)


def _loads_a_file(config: ClipConfig) -> bool:
    """Whether the weights come from a checkpoint file, which records no preprocessing.

    The file itself is not needed here: it may be in a bucket that only the
    model's loader copies (``pipeline.scoring.weights``).
    """
    if config.clip_checkpoint or config.clip_model == reference_scorer.MODEL_NAME:
        return True
    tag = config.clip_pretrained
    return bool(tag) and Path(tag).is_file()


def _model_id_source(name: str) -> str:
    """What open_clip is given for an ``hf-hub:`` or ``local-dir:`` id.

    A Hub repo whose config and weights are cached is its snapshot folder, as a
    ``local-dir:`` (no request), unless its text side comes from transformers,
    which open_clip then reads by its own name rather than from the folder.
    """
    if not name.startswith(HF_HUB_PREFIX):
        return name
    folder = cached_hub_folder(name[len(HF_HUB_PREFIX) :])
    if folder is None:
        return name
    text = _read_config(Path(folder, HUB_CONFIG_NAME))["model_cfg"].get("text_cfg", {})
    if text.get("hf_model_name") or text.get("hf_tokenizer_name"):
        return name
    return LOCAL_DIR_PREFIX + folder


def _id_configs(name: str, source: str) -> tuple[dict, dict]:
    """(model_cfg, preprocess_cfg) of an hf-hub: or local-dir: id, as open_clip reads them."""
    if source.startswith(LOCAL_DIR_PREFIX):
        path = Path(source[len(LOCAL_DIR_PREFIX) :]) / HUB_CONFIG_NAME
    else:
        path = Path(_hub_config_file(name))
    found = _read_config(path)
    return found["model_cfg"], found.get("preprocess_cfg", {})


def _hub_config_file(name: str) -> str:
    """The open_clip config of an hf-hub: id: from the cache, else downloaded if the Hub answers."""
    from huggingface_hub import try_to_load_from_cache

    model_id = name[len(HF_HUB_PREFIX) :]
    cached = try_to_load_from_cache(model_id, HUB_CONFIG_NAME)
    if isinstance(cached, str):
        return cached
    host = _hub_host()
    if not _hub_reachable(host):
        raise ClipLoadError(
            f"the configuration of {name} is not in the local Hugging Face cache and {host} "
            f"cannot be reached to download it. " + local_weights_hint(name)
        )
    try:
        return download_pretrained_from_hf(model_id, filename=HUB_CONFIG_NAME)
    except Exception as error:  # noqa: BLE001 - open_clip and the Hub raise many types
        raise ClipLoadError(
            f"the configuration of {name} could not be read: {_short(error)}. "
            + local_weights_hint(name)
        ) from error


def _read_config(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _tokenizer(name: str, source: str) -> Tokenizer:
    """open_clip's tokenizer for the model, read from where the model is read."""
    try:
        return open_clip.get_tokenizer(source)
    except Exception as error:  # noqa: BLE001 - open_clip and the Hub raise many types
        raise ClipLoadError(
            f"the tokenizer of {name} could not be loaded: {_short(error)}. "
            + local_weights_hint(name)
        ) from error


def _weights_source(config: ClipConfig) -> str | None:
    """What to pass as open_clip's ``pretrained``: a checkpoint path, a tag, or None (hub)."""
    name = config.clip_model
    if name == reference_scorer.MODEL_NAME:
        reference_scorer.register_reference_model()
        return _reference_checkpoint(config.clip_checkpoint)
    if is_model_id(name):
        if config.clip_checkpoint:
            raise ClipLoadError(
                f"--clip-checkpoint cannot be combined with --clip-model {name}: open_clip "
                f"takes the weights from the model id. " + local_weights_hint(name)
            )
        return None
    check_model_name(name)
    if config.clip_checkpoint:
        return _existing_file(config.clip_checkpoint, name)
    tag = config.clip_pretrained
    check_pretrained_tag(name, tag, tag_is_file=bool(tag) and Path(tag).is_file())
    return tag


def _reference_checkpoint(checkpoint: str) -> str:
    if checkpoint:
        return _existing_file(checkpoint, reference_scorer.MODEL_NAME)
    path = Path(reference_scorer.CHECKPOINT_PATH)
    if not path.is_file():
        raise ClipLoadError(
            f"the reference scorer's checkpoint {path} is missing from this install; "
            f"build it with `{reference_scorer.TRAIN_COMMAND}` and pass "
            f"--clip-checkpoint PATH, or use --clip-model none to turn scoring off."
        )
    return str(path)


def _existing_file(path: str, name: str) -> str:
    if not Path(path).is_file():
        raise ClipLoadError(f"--clip-checkpoint {path}: no such file. " + local_weights_hint(name))
    return path


def _create(
    name: str, pretrained: str | None, device: torch.device
) -> tuple[torch.nn.Module, Preprocess, Tokenizer]:
    """Build the model from local files when they are at hand, else from the Hub if it answers."""
    if not is_model_id(name):
        check_text_library(name, open_clip.get_model_config(name.replace("/", "-")) or {})
    local = _local_weights(name, pretrained)
    if local is not None:
        source, weights, overrides = local
        try:
            return _open_clip_model(source, weights, device, overrides)
        except Exception as error:  # open_clip raises many types; all mean "failed"
            raise ClipLoadError(
                f"the checkpoint {weights or source} could not be loaded as an open_clip "
                f"checkpoint for {name}: {_short(error)}. " + local_weights_hint(name)
            ) from error
    what = f"{name} {pretrained}" if pretrained else name
    host = _hub_host()
    if not _hub_reachable(host):
        raise ClipLoadError(
            f"the weights of {what} are not in the local Hugging Face cache and {host} cannot "
            f"be reached to download them. " + local_weights_hint(name)
        )
    try:
        return _open_clip_model(name, pretrained, device)
    except Exception as error:
        raise ClipLoadError(
            f"downloading the weights of {what} failed: {_short(error)}. "
            + local_weights_hint(name)
        ) from error


def _local_weights(name: str, pretrained: str | None) -> tuple[str, str | None, dict] | None:
    """(what to give open_clip as the model, as ``pretrained``, preprocessing arguments) when
    the weights are on this machine already; None when they must be downloaded."""
    if pretrained and Path(pretrained).is_file():
        return name, pretrained, {}
    if name.startswith(LOCAL_DIR_PREFIX):
        return name, None, {}
    if name.startswith(HF_HUB_PREFIX):
        cached = cached_hub_folder(name[len(HF_HUB_PREFIX) :]) is not None
        return (_model_id_source(name), None, {}) if cached else None
    record = pretrained_config(name, pretrained or "")
    weights = cached_weights(record) if record else None
    return (name, weights, preprocess_overrides(record)) if weights else None


def _open_clip_model(
    name: str, pretrained: str | None, device: torch.device, overrides: dict | None = None
) -> tuple[torch.nn.Module, Preprocess, Tokenizer]:
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, require_pretrained=True, **(overrides or {})
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


def _short(error: BaseException, limit: int = 300) -> str:
    """One line of an exception, capped: open_clip's messages can list every model."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
