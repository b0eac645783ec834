"""Which CLIP models and pretrained tags open_clip knows, answered without importing torch.

The launcher checks ``--clip-model`` and ``--clip-pretrained`` before it submits
a job, and must not pay for torch to do it: importing open_clip imports torch
and its CUDA libraries (about 1 GB of memory), which only the scoring workers
need. open_clip's own lists are read instead: ``list_models()`` is the stems of
the JSON files in its ``model_configs`` folder, and the pretrained tags are the
registry in its ``pretrained`` module, which is run here without the package's
``__init__`` (the one thing in it that wants torch, ``safetensors.torch``, is
optional there). Where open_clip is already imported, its own functions answer.

The checks raise ``ClipLoadError`` with the same wording whether the launcher or a
worker finds the problem.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import json
import os
import socket
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from paircurate.transforms.scoring.reference_scorer import MODEL_NAME

HF_HUB_PREFIX = "hf-hub:"
# The file an hf-hub: repo's open_clip config is in.
HUB_CONFIG_NAME = "open_clip_config.json"
# What a pretrained tag's record may set of the image transform (create_model_and_transforms
# takes each as image_KEY).
TAG_PREPROCESSING = ("mean", "std", "interpolation", "resize_mode")
# The extra that installs transformers, for the architectures whose text side needs it.
HF_TEXT_EXTRA = "hf-text"
LOCAL_DIR_PREFIX = "local-dir:"
# The name under which open_clip's folder is loaded as a bare package (no __init__ run).
_BARE_PACKAGE = "_paircurate_open_clip_bare"
# A connect that takes longer than this counts as "no network": loading must not hang.
HUB_PROBE_TIMEOUT_S = 3.0


class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says why and how to give local weights."""


def local_weights_hint(model_name: str) -> str:
    """How to score without any download; every ClipLoadError about weights ends with it."""
    if model_name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        model_name = "same"
    return (
        f"To score with local weights, pass --clip-checkpoint PATH (an open_clip checkpoint "
        f"for the {model_name} architecture), or --clip-model paircurate-ref (the project's "
        f"reference scorer, shipped with the package), or --clip-model none to turn scoring off."
    )


def is_model_id(name: str) -> bool:
    """An hf-hub: or local-dir: id: open_clip takes config and weights from it."""
    return name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX))


def known_models() -> list[str]:
    """open_clip's ``list_models()``, plus the project's reference scorer."""
    if "open_clip" in sys.modules:
        names = set(sys.modules["open_clip"].list_models())
    else:
        names = set()
        for path in (_open_clip_folder() / "model_configs").glob("*.json"):
            config = json.loads(path.read_text())
            if all(key in config for key in ("embed_dim", "vision_cfg", "text_cfg")):
                names.add(path.stem)  # the same rule as open_clip's _rescan_model_configs
    return sorted(names | {MODEL_NAME})


def check_model_name(name: str) -> None:
    """A built-in architecture name (or the reference scorer's), else ClipLoadError."""
    known = known_models()
    if name.replace("/", "-") in known:
        return
    close = difflib.get_close_matches(name, known, n=3)
    suggestion = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ClipLoadError(
        f"--clip-model {name!r} is not an open_clip model{suggestion}; "
        f"open_clip.list_models() names {len(known)} architectures, or use an "
        f"hf-hub:ORG/NAME id. " + local_weights_hint("named")
    )


def check_pretrained_tag(name: str, tag: str, tag_is_file: bool = False) -> None:
    """``tag`` is one of open_clip's pretrained tags for ``name`` (or a weights file)."""
    if not tag:
        raise ClipLoadError(
            f"--clip-pretrained is empty, so {name} would score with random weights. "
            + local_weights_hint(name)
        )
    registry = pretrained_registry()
    if tag_is_file or registry.is_pretrained_cfg(name.replace("/", "-"), tag):
        return
    tags = registry.list_pretrained_tags_by_model(name.replace("/", "-"))
    known = f"its tags: {', '.join(tags)}" if tags else "open_clip has no pretrained tag for it"
    raise ClipLoadError(
        f"--clip-pretrained {tag!r} is not an open_clip tag for {name} ({known}). "
        + local_weights_hint(name)
    )


def check_weights_at_hand(name: str, tag: str) -> None:
    """A tag's weights are in this machine's cache, or the Hub answers to download them.

    For a job whose workers are this machine: without either, scoring could only
    fail after every image was downloaded. Nothing is downloaded here.
    """
    record = pretrained_config(name, tag)
    if not record or cached_weights(record):
        return
    host = hub_host()
    if not hub_reachable(host):
        raise ClipLoadError(
            f"the weights of {name} {tag} are not in the local Hugging Face cache and {host} "
            f"cannot be reached to download them. " + local_weights_hint(name)
        )


def cached_weights(record: dict[str, Any]) -> str | None:
    """The file open_clip's ``download_pretrained`` would return for a tag's record without
    a request (its own file, the Hugging Face cache, or CLIP's URL cache), or None.

    Asked through huggingface_hub's public ``try_to_load_from_cache``: nothing here
    touches the Hub or changes its settings.
    """
    if record.get("file"):
        return str(record["file"])
    if record.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(record["hf_hub"])
        for candidate in weights_names(filename):
            found = try_to_load_from_cache(repo, candidate)
            if isinstance(found, str):
                return found
        return None
    url = record.get("url", "")
    path = Path("~/.cache/clip", os.path.basename(url)).expanduser()
    return str(path) if url and path.is_file() else None


def cached_hub_folder(model_id: str) -> str | None:
    """The cached snapshot of an ``hf-hub:`` repo that holds its open_clip config and
    weights, a folder open_clip loads as ``local-dir:`` without a request; else None."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model_id, HUB_CONFIG_NAME)
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    if any((folder / name).is_file() for name in weights_names()):
        return str(folder)
    return None


def weights_names(filename: str = "") -> list[str]:
    """The names open_clip tries for a Hub repo's weights file, in its order.

    open_clip looks for a .safetensors twin of the file first; the rule is its
    private ``_get_safe_alternatives`` (tests/transforms/scoring/test_clip_names.py
    guards its name and answers), so that the cache is asked for what open_clip
    would load.
    """
    registry = pretrained_registry()
    filename = filename or registry.HF_WEIGHTS_NAME
    return [*registry._get_safe_alternatives(filename), filename]


def preprocess_overrides(record: dict[str, Any]) -> dict[str, Any]:
    """A tag's preprocessing, as the ``image_*`` arguments of ``create_model_and_transforms``:
    the same model and transform open_clip builds from the tag, built from a file."""
    return {f"image_{key}": record[key] for key in TAG_PREPROCESSING if record.get(key)}


def builtin_model_config(name: str) -> dict[str, Any]:
    """open_clip's config of a built-in architecture ({} if none), read without torch."""
    name = name.replace("/", "-")
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"].get_model_config(name) or {}
    path = _open_clip_folder() / "model_configs" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def check_text_library(name: str, model_config: dict[str, Any]) -> None:
    """An architecture whose text tower or tokenizer comes from Hugging Face transformers
    (SigLIP, XLM-RoBERTa, mT5, CLIPA ...) needs it installed: the ``hf-text`` extra."""
    text = model_config.get("text_cfg", {})
    if not (text.get("hf_model_name") or text.get("hf_tokenizer_name")):
        return
    if importlib.util.find_spec("transformers") is None:
        raise ClipLoadError(
            f"--clip-model {name} takes its text tower or tokenizer from Hugging Face "
            f"transformers, which is not installed: pip install 'paircurate[{HF_TEXT_EXTRA}]' "
            f"(worker images: docker build --build-arg EXTRAS={HF_TEXT_EXTRA})."
        )


def hub_host() -> str:
    try:
        from huggingface_hub import constants
    except ImportError:
        return "huggingface.co"
    return urlparse(constants.ENDPOINT).hostname or "huggingface.co"


def hub_reachable(host: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def pretrained_config(name: str, tag: str) -> dict[str, Any]:
    """open_clip's record of a pretrained tag (its preprocessing among it); {} if unknown."""
    return pretrained_registry().get_pretrained_cfg(name.replace("/", "-"), tag) or {}


def pretrained_registry() -> types.ModuleType:
    """open_clip's ``pretrained`` module: the imported one, else a bare, torch-free copy."""
    if "open_clip" in sys.modules:
        return importlib.import_module("open_clip.pretrained")
    return _bare_pretrained()


def _open_clip_folder() -> Path:
    spec = importlib.util.find_spec("open_clip")  # finds, does not import
    if spec is None or spec.origin is None:
        raise ClipLoadError("open_clip is not installed: pip install open_clip_torch")
    return Path(spec.origin).parent


@functools.cache
def _bare_pretrained() -> types.ModuleType:
    """Run open_clip's pretrained.py as a module of a bare package over the same folder.

    Its relative imports (constants, version) resolve in that folder; its optional
    ``import safetensors.torch`` is answered with ImportError, as open_clip allows.
    """
    package = types.ModuleType(_BARE_PACKAGE)
    package.__path__ = [str(_open_clip_folder())]
    sys.modules.setdefault(_BARE_PACKAGE, package)
    blocked = "safetensors.torch"
    saved = sys.modules.get(blocked, _MISSING)
    if saved is _MISSING:
        sys.modules[blocked] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        return importlib.import_module(f"{_BARE_PACKAGE}.pretrained")
    finally:
        if saved is _MISSING:
            del sys.modules[blocked]


_MISSING = object()
