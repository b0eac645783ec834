"""Where evaluation data comes from: labelled image sets and captioned pairs.

Labelled images (zero-shot classification):

- an ImageFolder-style tree, ``ROOT/<class>/<image>`` (torchvision's layout: classes
  are the sorted folder names, underscores read as spaces, unless class names are given);
- a WebDataset (a ``.tar``, a brace pattern, or a folder of ``.tar`` files) whose
  samples carry the class index in a field: ``cls`` (the member ``KEY.cls``) or
  ``json.NAME`` (a field of ``KEY.json``);
- either of these with a ``classes.json`` beside it, which names the classes, the
  label field and prompt templates per task and language (the synthetic web's
  evaluation set writes one).

Captioned pairs (retrieval): any WebDataset whose samples hold an image and a
``txt`` caption, which includes a paircurate run folder (its ``shards/*.tar``).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import webdataset as wds
from PIL import Image, ImageOps

CLASSES_FILE = "classes.json"
IMAGE_KEYS = "jpg;jpeg;png;webp"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class EvalDataError(ValueError):
    """Evaluation data cannot be read as asked; the message says what to change."""


@dataclass(frozen=True)
class ClassSpec:
    """What a zero-shot task needs besides images: class names, label field, templates."""

    classnames: list[str]
    label_field: str = "cls"
    templates: list[str] = field(default_factory=list)


def load_class_spec(source: str, task: str | None, language: str) -> ClassSpec | None:
    """The ``classes.json`` task beside a data source, or None when there is none.

    Format: ``{"tasks": {"NAME": {"label_field": "json.NAME", "classnames": {"en": [...]},
    "templates": {"en": [...]}}}}``; the first task is the default.
    """
    path = _classes_file(source)
    if path is None:
        if task:
            raise EvalDataError(f"--task {task}: {source} has no {CLASSES_FILE} beside it")
        return None
    tasks = json.loads(path.read_text(encoding="utf-8")).get("tasks") or {}
    if not tasks:
        raise EvalDataError(f"{path} names no tasks")
    name = task or next(iter(tasks))
    if name not in tasks:
        raise EvalDataError(f"--task {name}: {path} has tasks {', '.join(tasks)}")
    entry = tasks[name]
    names = entry["classnames"]
    if isinstance(names, dict):
        if language not in names:
            raise EvalDataError(
                f"--language {language}: task {name} of {path} has class names in "
                f"{', '.join(names)}"
            )
        names = names[language]
    templates = entry.get("templates") or []
    if isinstance(templates, dict):
        templates = templates.get(language, [])
    return ClassSpec(list(names), entry.get("label_field", "cls"), list(templates))


def _classes_file(source: str) -> Path | None:
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    candidate = folder / CLASSES_FILE
    return candidate if candidate.is_file() else None


def is_image_folder(source: str) -> bool:
    """A folder whose subfolders hold the images (and that has no .tar shards)."""
    path = Path(source)
    if not path.is_dir() or shard_urls_or_none(source):
        return False
    return any(child.is_dir() for child in path.iterdir())


def image_folder_classes(source: str) -> list[str]:
    """Class names of an ImageFolder tree: sorted subfolder names, underscores as spaces."""
    from torchvision.datasets.folder import find_classes

    classes, _ = find_classes(source)
    return [name.replace("_", " ") for name in classes]


def iter_image_folder(source: str, classnames: list[str]) -> Iterator[tuple[Image.Image, int]]:
    """(RGB image, class index) of every image in an ImageFolder tree, in torchvision's order.

    A folder's class is the index of its name (underscores as spaces) in ``classnames``,
    so a list given by the user may hold classes that have no folder here.
    """
    from torchvision.datasets.folder import make_dataset

    folders = sorted(child.name for child in Path(source).iterdir() if child.is_dir())
    index = {
        name: classnames.index(name.replace("_", " "))
        for name in folders
        if name.replace("_", " ") in classnames
    }
    missing = [name for name in folders if name not in index]
    if missing:
        raise EvalDataError(
            f"{source}: class folders {', '.join(missing[:5])} are not among the class names"
        )
    samples = make_dataset(source, index, extensions=tuple(IMAGE_SUFFIXES), allow_empty=True)
    if not samples:
        raise EvalDataError(f"{source}: no images in its class folders")
    for path, label in samples:
        yield _open_image(path), int(label)


def _open_image(path: str) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def shard_urls_or_none(source: str) -> list[str]:
    """The .tar files a source names: a run folder's shards, a folder of tars, a glob, a file."""
    path = Path(source)
    if path.is_dir():
        shards = path / "shards"
        folder = shards if shards.is_dir() else path
        return sorted(str(p) for p in folder.glob("*.tar"))
    if any(ch in source for ch in "*?["):
        return sorted(glob.glob(source))
    if "{" in source or path.is_file():
        return [source]
    return []


def shard_urls(source: str) -> list[str]:
    urls = shard_urls_or_none(source)
    if not urls:
        raise EvalDataError(
            f"{source}: no WebDataset .tar files found (give a .tar, a brace pattern, a "
            f"folder of .tar files, a paircurate run folder, or an ImageFolder tree)"
        )
    return urls


def _samples(source: str) -> Iterator[dict]:
    dataset = wds.WebDataset(shard_urls(source), shardshuffle=False)
    yield from dataset.decode("pil")


def _image_of(sample: dict, source: str) -> Image.Image:
    for key in IMAGE_KEYS.split(";"):
        if key in sample:
            return sample[key].convert("RGB")
    raise EvalDataError(f"{source}: sample {sample.get('__key__')} has no image member")


def label_of(sample: dict, label_field: str) -> object:
    """A sample's label: ``cls`` reads the member KEY.cls, ``json.NAME`` a field of KEY.json."""
    if label_field.startswith("json."):
        value = (sample.get("json") or {}).get(label_field.removeprefix("json."))
    else:
        value = sample.get(label_field)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return value


def iter_labelled_shards(
    source: str, label_field: str, classnames: list[str]
) -> Iterator[tuple[Image.Image, int]]:
    """(RGB image, class index) from WebDataset samples; a label may be an index or a name."""
    index = {name: i for i, name in enumerate(classnames)}
    for sample in _samples(source):
        value = label_of(sample, label_field)
        if isinstance(value, str) and value in index:
            value = index[value]
        if not isinstance(value, int) or not 0 <= value < len(classnames):
            raise EvalDataError(
                f"{source}: sample {sample.get('__key__')} has label {value!r} in field "
                f"{label_field!r}; expected a class index below {len(classnames)} or a class name "
                f"(--class-field picks the field: cls or json.NAME)"
            )
        yield _image_of(sample, source), value


def iter_captioned(source: str) -> Iterator[tuple[Image.Image, str]]:
    """(RGB image, caption) of every sample with a ``txt`` caption, in shard order."""
    found = False
    for sample in _samples(source):
        caption = sample.get("txt")
        if caption is None:
            caption = (sample.get("json") or {}).get("caption")
        if not caption:
            continue
        found = True
        yield _image_of(sample, source), str(caption)
    if not found:
        raise EvalDataError(f"{source}: no sample with an image and a txt caption")


def result_path_for_run(run_dir: str, model_label: str) -> str:
    """Where a run folder keeps an eval result: RUN/eval/<model>.json (read by the report)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_label)
    return os.path.join(run_dir, "eval", f"{safe}.json")
