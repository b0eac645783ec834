"""CLIP scoring through open_clip's own API: load a model once, embed and score batches.

``load_clip(config)`` turns a ``ClipConfig`` into a ``ClipScorer``. Everything the
scorer does is open_clip's: the model from ``create_model_and_transforms``, its eval
transform for images, ``get_tokenizer`` for captions, ``encode_image`` /
``encode_text`` for features. Scores are therefore the numbers a user gets from a
plain open_clip loop, which is what thresholds published by LAION and DataComp mean.

Loading fails fast with a ``ClipLoadError`` that says what went wrong and how to
supply weights locally, rather than with open_clip's retry loop against the Hub
(minutes when offline) or its "unknown tag" wording. Pretrained tags are first
looked up in the local Hugging Face cache with the Hub in offline mode; the
network is only tried when that fails and the Hub answers a 3-second connect.

``ClipConfig`` is a frozen dataclass of plain values and pickles; a Beam
ModelHandler carries it to the workers and calls ``load_clip`` in ``load_model()``.
A ``ClipScorer`` holds the model itself and is meant to be built on the worker.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import open_clip
import torch
from PIL import Image

from paircurate.schemas.config import ClipConfig
from paircurate.transforms.scoring import reference_scorer

logger = logging.getLogger(__name__)

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
# A connect that takes longer than this counts as "no network": loading must not hang.
HUB_PROBE_TIMEOUT_S = 3.0
_HUB_MODE_LOCK = threading.Lock()

Preprocess = Callable[[Image.Image], torch.Tensor]
Tokenizer = Callable[..., torch.Tensor]


class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says why and how to give local weights."""


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

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        preprocess: Preprocess,
        tokenizer: Tokenizer,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
    ) -> ClipScorer:
        """A scorer around a model the caller already built (benchmarks, tests)."""
        device = torch.device(device)
        return cls(model.to(device), preprocess, tokenizer, device, batch_size)

    def preprocess_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own eval transform of each image, stacked into (n, 3, H, W)."""
        if not images:
            size = _input_size(self.model)
            return torch.zeros((0, 3, *size))
        return torch.stack([self.preprocess(image) for image in images])

    def embed_images(self, pixels: torch.Tensor) -> np.ndarray:
        """L2-normalised image features (float32, (n, embed_dim)) of preprocessed pixels."""
        return self._embed(self.model.encode_image, pixels)

    def tokenize(self, captions: Sequence[str]) -> tuple[torch.Tensor, list[bool]]:
        """open_clip's tokens of each caption, and whether each needed more than the context.

        The tokenizer silently cuts long captions to ``context_length`` (start and end
        tokens included); the flag lets the ledger say which scores saw a cut caption.
        """
        captions = list(captions)
        tokens = self.tokenizer(captions)
        return tokens, _truncated(self.tokenizer, captions, tokens, self.context_length)

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
            image_parts.append(self.embed_images(self.preprocess_images(images[start:stop])))
            tokens, cut = self.tokenize(captions[start:stop])
            text_parts.append(self.embed_texts(tokens))
            truncated.extend(cut)
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


def local_weights_hint(model_name: str) -> str:
    """How to score without any download; every ClipLoadError about weights ends with it."""
    if model_name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        model_name = "same"
    return (
        f"To score with local weights, pass --clip-checkpoint PATH (an open_clip checkpoint "
        f"for the {model_name} architecture), or --clip-model paircurate-ref (the project's "
        f"reference scorer, shipped with the package), or --clip-model none to turn scoring off."
    )


def resolve_device(choice: str) -> torch.device:
    """auto -> cuda when torch sees a GPU, else cpu; cuda without a GPU is an error."""
    has_cuda = torch.cuda.is_available()
    if choice == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if choice == "cuda" and not has_cuda:
        raise ClipLoadError(
            "--clip-device cuda: torch sees no CUDA GPU on this machine "
            "(torch.cuda.is_available() is False); use --clip-device auto or cpu."
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


def _weights_source(config: ClipConfig) -> str | None:
    """What to pass as open_clip's ``pretrained``: a checkpoint path, a tag, or None (hub)."""
    name = config.clip_model
    if name == reference_scorer.MODEL_NAME:
        reference_scorer.register_reference_model()
        return _reference_checkpoint(config.clip_checkpoint)
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        if config.clip_checkpoint:
            raise ClipLoadError(
                f"--clip-checkpoint cannot be combined with --clip-model {name}: open_clip "
                f"takes the weights from the model id. " + local_weights_hint(name)
            )
        return None
    _check_known_model(name)
    if config.clip_checkpoint:
        return _existing_file(config.clip_checkpoint, name)
    return _pretrained_tag(name, config.clip_pretrained)


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


def _check_known_model(name: str) -> None:
    known = open_clip.list_models()
    if name.replace("/", "-") in known:
        return
    close = difflib.get_close_matches(name, known, n=3)
    suggestion = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ClipLoadError(
        f"--clip-model {name!r} is not an open_clip model{suggestion}; "
        f"open_clip.list_models() names {len(known)} architectures, or use an "
        f"hf-hub:ORG/NAME id. " + local_weights_hint("named")
    )


def _existing_file(path: str, name: str) -> str:
    if not Path(path).is_file():
        raise ClipLoadError(f"--clip-checkpoint {path}: no such file. " + local_weights_hint(name))
    return path


def _pretrained_tag(name: str, tag: str) -> str:
    if not tag:
        raise ClipLoadError(
            f"--clip-pretrained is empty, so {name} would score with random weights. "
            + local_weights_hint(name)
        )
    if open_clip.is_pretrained_cfg(name, tag) or Path(tag).is_file():
        return tag
    tags = open_clip.list_pretrained_tags_by_model(name)
    known = f"its tags: {', '.join(tags)}" if tags else "open_clip has no pretrained tag for it"
    raise ClipLoadError(
        f"--clip-pretrained {tag!r} is not an open_clip tag for {name} ({known}). "
        + local_weights_hint(name)
    )


def _create(
    name: str, pretrained: str | None, device: torch.device
) -> tuple[torch.nn.Module, Preprocess, Tokenizer]:
    """Build the model, first from local files only, then from the Hub if it answers."""
    from_hub = pretrained is None or not Path(pretrained).is_file()
    try:
        with _hub_offline():
            return _open_clip_model(name, pretrained, device)
    except Exception as error:  # open_clip raises many types; all mean "failed"
        if not from_hub:
            raise ClipLoadError(
                f"the checkpoint {pretrained} could not be loaded as an open_clip "
                f"checkpoint for {name}: {_short(error)}. " + local_weights_hint(name)
            ) from error
        cache_error = error
    what = f"{name} {pretrained}" if pretrained else name
    host = _hub_host()
    if not _hub_reachable(host):
        raise ClipLoadError(
            f"the weights of {what} are not in the local Hugging Face cache and {host} cannot "
            f"be reached to download them ({_short(cache_error)}). " + local_weights_hint(name)
        ) from cache_error
    try:
        return _open_clip_model(name, pretrained, device)
    except Exception as error:
        raise ClipLoadError(
            f"downloading the weights of {what} failed: {_short(error)}. "
            + local_weights_hint(name)
        ) from error


def _open_clip_model(
    name: str, pretrained: str | None, device: torch.device
) -> tuple[torch.nn.Module, Preprocess, Tokenizer]:
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, require_pretrained=True
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face Hub offline mode for the duration of the block (cache only, no requests).

    ``HF_HUB_OFFLINE`` is read once at import, so the environment variable cannot be
    set here; the module constant that every request checks is flipped instead. The
    lock keeps two loading threads (Beam DoFn instances) from restoring it wrongly.
    """
    try:
        from huggingface_hub import constants
    except ImportError:  # open_clip then cannot reach the Hub at all
        yield
        return
    with _HUB_MODE_LOCK:
        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = saved


def _hub_host() -> str:
    try:
        from huggingface_hub import constants
    except ImportError:
        return "huggingface.co"
    return urlparse(constants.ENDPOINT).hostname or "huggingface.co"


def _hub_reachable(host: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _short(error: BaseException, limit: int = 300) -> str:
    """One line of an exception, capped: open_clip's messages can list every model."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
