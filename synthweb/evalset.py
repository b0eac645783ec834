"""A labelled, held-out evaluation set of the synthetic web, for zero-shot classification.

Each image shows one scene (see scenes.py), labelled by shape, colour, count and the
object (colour + shape). Images are drawn from their own random stream, keyed by the
set's seed and a purpose string that no web uses, so no image of the set is an image
of a training web of any seed; shapes and colours cycle so that every class has
the same number of images. Like the pipeline's ``--resize-mode border`` output, each
picture is fitted into a black-padded square.

The set is written as a WebDataset (``evalset-00000.tar``: ``KEY.jpg``, ``KEY.cls``
with the object class, ``KEY.txt`` with an English caption for retrieval, and
``KEY.json`` with every label) plus ``classes.json``: per task, the label field, the
class names in the four caption languages and prompt templates per language.

    python -m paircurate.synthweb evalset --out DIR --images 1200 --seed 7
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds
from PIL import Image

from . import captions, images, scenes

TASKS: tuple[str, ...] = ("object", "shape", "colour", "count")
COUNTS: tuple[int, ...] = (1, 2, 3, 4)
SHARD_NAME = "evalset-{index:05d}.tar"
CLASSES_FILE = "classes.json"
DEFAULT_SIDE = 256
_STREAM = "paircurate-evalset"

# Class names per task and language. German adjectives take the strong endings of a
# noun without article; French and Spanish colours agree with the noun's gender.
_DE_STRONG = {"m": "er", "n": "es", "f": "e"}
_COUNT_NAMES = {
    "en": ("one shape", "two shapes", "three shapes", "four shapes"),
    "de": ("eine Form", "zwei Formen", "drei Formen", "vier Formen"),
    "fr": ("une forme", "deux formes", "trois formes", "quatre formes"),
    "es": ("una forma", "dos formas", "tres formas", "cuatro formas"),
}
_COLOUR_NAMES = {
    "en": {colour: colour for colour in scenes.COLOURS},
    "de": {colour: stem for colour, stem in captions._DE_COLOURS.items()},
    "fr": {colour: forms[0] for colour, forms in captions._FR_COLOURS.items()},
    "es": {colour: forms[0] for colour, forms in captions._ES_COLOURS.items()},
}
_SHAPE_NAMES = {
    "en": {shape: shape for shape in scenes.SHAPES},
    "de": {shape: entry[0] for shape, entry in captions._DE_SHAPES.items()},
    "fr": {shape: entry[0] for shape, entry in captions._FR_SHAPES.items()},
    "es": {shape: entry[0] for shape, entry in captions._ES_SHAPES.items()},
}
# CLIP-style ensembles: "{}" takes the class name.
TEMPLATES = {
    "en": (
        "a photo of a {}.",
        "a drawing of a {}.",
        "a picture of a {}.",
        "an illustration of a {}.",
    ),
    "de": ("Foto: {}", "Zeichnung: {}", "Das Bild zeigt: {}", "Illustration: {}"),
    "fr": ("Photo : {}", "Dessin : {}", "L'image montre : {}", "Illustration : {}"),
    "es": ("Foto: {}", "Dibujo: {}", "La imagen muestra: {}", "Ilustración: {}"),
}
_COUNT_TEMPLATES = {
    "en": ("a photo of {}.", "a drawing of {}.", "a picture of {}.", "an illustration of {}."),
    **{language: TEMPLATES[language] for language in ("de", "fr", "es")},
}


def object_classes() -> list[tuple[str, str]]:
    """(colour, shape) of each object class, colour-major."""
    return [(colour, shape) for colour in scenes.COLOURS for shape in scenes.SHAPES]


def object_name(colour: str, shape: str, language: str) -> str:
    """ "red circle", "roter Kreis", "cercle rouge", "círculo rojo"."""
    if language == "en":
        return f"{colour} {shape}"
    if language == "de":
        noun, _, gender = captions._DE_SHAPES[shape]
        return f"{captions._DE_COLOURS[colour]}{_DE_STRONG[gender]} {noun}"
    table_shapes, table_colours = {
        "fr": (captions._FR_SHAPES, captions._FR_COLOURS),
        "es": (captions._ES_SHAPES, captions._ES_COLOURS),
    }[language]
    noun, _, gender = table_shapes[shape]
    return f"{noun} {table_colours[colour][0 if gender == 'm' else 1]}"


def class_names(task: str, language: str) -> list[str]:
    """The class names of a task in one of the caption languages, in class-index order."""
    if task == "object":
        return [object_name(colour, shape, language) for colour, shape in object_classes()]
    if task == "shape":
        return [_SHAPE_NAMES[language][shape] for shape in scenes.SHAPES]
    if task == "colour":
        return [_COLOUR_NAMES[language][colour] for colour in scenes.COLOURS]
    if task == "count":
        return list(_COUNT_NAMES[language])
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def classes_document() -> dict:
    """What classes.json holds: per task its label field, class names and templates by language."""
    tasks = {}
    for task in TASKS:
        templates = _COUNT_TEMPLATES if task == "count" else TEMPLATES
        tasks[task] = {
            "label_field": "cls" if task == "object" else f"json.{task}",
            "classnames": {lang: class_names(task, lang) for lang in captions.LANGUAGES},
            "templates": {lang: list(templates[lang]) for lang in captions.LANGUAGES},
        }
    return {"tasks": tasks}


@dataclass(frozen=True)
class EvalSample:
    """One image of the evaluation set with its labels and an English caption."""

    key: str
    jpeg: bytes
    scene: scenes.Scene
    caption: str
    labels: dict[str, int]


BACKGROUNDS: tuple[str, ...] = ("random", "neutral")


def eval_scene(
    seed: int, index: int, background: str = "random"
) -> tuple[scenes.Scene, random.Random]:
    """The scene of image ``index``: object class cycles, the rest is drawn from its stream.

    ``background="neutral"`` paints every background grey, a colour of no class: the
    object's colour is then the only class colour in the picture. With "random" (the
    web's own mix) the background, another class colour, covers most of the picture.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background={background!r}; expected one of {BACKGROUNDS}")
    rng = random.Random(f"{_STREAM}:{seed}:{index}")
    colour, shape = object_classes()[index % len(object_classes())]
    drawn = scenes.random_scene(rng)
    drawn_background = rng.choice([c for c in scenes.COLOURS if c != colour])
    if background == "neutral":
        drawn_background = scenes.NEUTRAL_BACKGROUND
    count = COUNTS[(index // len(object_classes())) % len(COUNTS)]
    scene = scenes.Scene(
        shape=shape,
        colour=colour,
        count=count,
        size=drawn.size,
        position=drawn.position,
        background=drawn_background,
        background_style=drawn.background_style,
        layout_seed=drawn.layout_seed,
    )
    return scene, rng


def eval_sample(
    seed: int, index: int, side: int = DEFAULT_SIDE, background: str = "random"
) -> EvalSample:
    scene, rng = eval_scene(seed, index, background)
    spec = images.web_spec(rng)
    scale = side / max(spec.width, spec.height)
    width, height = max(1, round(spec.width * scale)), max(1, round(spec.height * scale))
    picture = scenes.render(scene, width, height, rng.choice((1, 2)))
    square = Image.new("RGB", (side, side))
    square.paste(picture, ((side - width) // 2, (side - height) // 2))
    buffer = io.BytesIO()
    square.save(buffer, "JPEG", quality=90)
    labels = {
        "object": object_classes().index((scene.colour, scene.shape)),
        "shape": scenes.SHAPES.index(scene.shape),
        "colour": list(scenes.COLOURS).index(scene.colour),
        "count": COUNTS.index(scene.count),
    }
    caption = captions.describe(scene, "en", rng)
    return EvalSample(f"{seed:04d}{index:07d}", buffer.getvalue(), scene, caption, labels)


def iter_samples(
    n_images: int, seed: int, side: int = DEFAULT_SIDE, background: str = "random"
) -> Iterator[EvalSample]:
    for index in range(n_images):
        yield eval_sample(seed, index, side, background)


def write_evalset(
    out: str | Path,
    n_images: int = 1200,
    seed: int = 0,
    side: int = DEFAULT_SIDE,
    background: str = "random",
) -> dict:
    """Write the set into folder ``out``; returns a summary (images, shard, sha256s).

    ``background``: "random" (another class colour, as on the web) or "neutral" (grey).
    """
    if n_images < 1:
        raise ValueError(f"n_images={n_images} must be at least 1")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    shard = folder / SHARD_NAME.format(index=0)
    temporary = shard.with_name(shard.name + f".tmp-{os.getpid()}")
    digests = []
    with wds.TarWriter(str(temporary)) as writer:
        for sample in iter_samples(n_images, seed, side, background):
            digests.append(hashlib.sha256(sample.jpeg).hexdigest())
            meta = {
                **sample.labels,
                "names": {task: class_names(task, "en")[i] for task, i in sample.labels.items()},
                "scene": sample.scene.__dict__,
                # The background's colour name, for zero-shot on what covers most of the
                # picture (--class-field json.background with the colour class names).
                "background": sample.scene.background,
                "seed": seed,
            }
            writer.write(
                {
                    "__key__": sample.key,
                    "jpg": sample.jpeg,
                    "cls": str(sample.labels["object"]).encode(),
                    "txt": sample.caption.encode(),
                    "json": json.dumps(meta, ensure_ascii=False).encode(),
                }
            )
    os.replace(temporary, shard)
    (folder / CLASSES_FILE).write_text(
        json.dumps(classes_document(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return {"images": n_images, "seed": seed, "shard": str(shard), "sha256": digests}


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m paircurate.synthweb evalset",
        description="Write a labelled evaluation set (shape, colour, count, object) of the "
        "synthetic web: a WebDataset shard and classes.json with class names in en, de, fr, es.",
    )
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--images", type=int, default=1200, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="sets of different seeds differ")
    parser.add_argument("--side", type=int, default=DEFAULT_SIDE, help="square image side, px")
    parser.add_argument(
        "--background", default="random", choices=BACKGROUNDS,
        help="random: another class colour, as on the web; neutral: grey, so that the "
        "object's colour is the only class colour in the picture",
    )  # fmt: skip
    args = parser.parse_args(argv)
    summary = write_evalset(args.out, args.images, args.seed, args.side, args.background)
    print(json.dumps({key: value for key, value in summary.items() if key != "sha256"}))
    return 0
