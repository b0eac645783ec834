"""Image sizes, formats and encodings of the synthetic web.

Row parameters (size, format, quality, EXIF orientation, near-duplicate
edits) are drawn here from a row's own random stream, so that an entry's
metadata is known without rendering and its bytes are the same every time.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image

from .scenes import Scene, render

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
EXIF_ORIENTATION_TAG = 0x0112

_ASPECTS = ((4, 3), (3, 2), (1, 1), (16, 9), (5, 4), (3, 4), (2, 3), (9, 16))
_ASPECT_WEIGHTS = (5, 4, 3, 3, 1, 2, 2, 1)
# Stored pixels are turned the opposite way of what exif_transpose undoes.
_STORE_TRANSPOSE = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class ImageSpec:
    """How a row's image is drawn and encoded; width/height as displayed."""

    width: int
    height: int
    image_format: str
    quality: int
    orientation: int
    texture: int


@dataclass(frozen=True)
class NearDuplicateEdit:
    """An edit of an original image: "quality", "resize", "crop" or "reframe" (a larger crop)."""

    kind: str
    quality: int
    scale: float = 1.0
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # pixels off left, top, right, bottom


def web_spec(rng: random.Random) -> ImageSpec:
    """A typical web image: mostly 300-800 px on the longer side, mostly JPEG."""
    long_side = rng.randint(300, 800) if rng.random() < 0.9 else rng.randint(801, 2000)
    aw, ah = rng.choices(_ASPECTS, weights=_ASPECT_WEIGHTS)[0]
    if aw >= ah:
        width, height = long_side, max(1, round(long_side * ah / aw))
    else:
        width, height = max(1, round(long_side * aw / ah)), long_side
    image_format = rng.choices(("jpeg", "png", "webp"), weights=(80, 10, 10))[0]
    orientation = 1
    if image_format == "jpeg" and rng.random() < 0.05:
        orientation = rng.choice((6, 8))
    return _spec(rng, width, height, image_format, orientation)


def tiny_spec(rng: random.Random) -> ImageSpec:
    """An icon or tracking-pixel sized image, 8 to 40 px a side."""
    image_format = rng.choice(("jpeg", "png"))
    return _spec(rng, rng.randint(8, 40), rng.randint(8, 40), image_format, 1)


def extreme_aspect_spec(rng: random.Random) -> ImageSpec:
    """A banner or a divider strip: one side 15 to 40 times the other."""
    long_side = rng.randint(900, 2000)
    short_side = max(20, long_side // rng.randint(15, 40))
    width, height = (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)
    return _spec(rng, width, height, rng.choice(("jpeg", "png")), 1)


def truncated_spec(rng: random.Random) -> ImageSpec:
    """A plain JPEG (cut in half when served)."""
    spec = web_spec(rng)
    return _spec(rng, spec.width, spec.height, "jpeg", 1)


def _spec(
    rng: random.Random, width: int, height: int, image_format: str, orientation: int
) -> ImageSpec:
    quality = rng.randint(70, 95)
    texture = 0 if image_format == "png" else rng.choice((1, 2))
    return ImageSpec(width, height, image_format, quality, orientation, texture)


def near_duplicate_edit(original: ImageSpec, rng: random.Random) -> NearDuplicateEdit:
    """Re-encode at another quality, shrink to 80-95 %, or crop 0.2-1 % off each side.

    Crops stay small because pHash is not crop-invariant: from about 2 % per
    side a crop drifts past the default distance of 6 bits, and such a re-framing
    is no longer what the perceptual-hash dedup promises to find.
    """
    kind = rng.choice(("quality", "resize", "crop"))
    quality = original.quality + rng.choice((-1, 1)) * rng.randint(10, 20)
    if not 50 <= quality <= 98:
        quality = original.quality - 15 if original.quality > 70 else original.quality + 15
    if kind == "resize":
        return NearDuplicateEdit(kind, quality, scale=rng.uniform(0.8, 0.95))
    if kind == "crop":
        crop = tuple(
            int(side * rng.uniform(0.002, 0.01))
            for side in (original.width, original.height, original.width, original.height)
        )
        return NearDuplicateEdit(kind, quality, crop=crop)  # type: ignore[arg-type]
    return NearDuplicateEdit(kind, quality)


def reframe_edit(original: ImageSpec, rng: random.Random) -> NearDuplicateEdit:
    """Crop 5-10 % off the width and off the height, split between the sides at random.

    Such a re-framing of the same picture is past pHash's reach (it drifts from
    about 2 % a side), but not past an image embedding's: it is what semantic
    dedup is for.
    """
    quality = original.quality
    crop = []
    for side in (original.width, original.height):
        total = side * rng.uniform(0.05, 0.10)
        first = total * rng.uniform(0.0, 1.0)
        crop.append((int(first), int(total - first)))
    (left, right), (top, bottom) = crop
    return NearDuplicateEdit("reframe", quality, crop=(left, top, right, bottom))


def edited_size(original: ImageSpec, edit: NearDuplicateEdit) -> tuple[int, int]:
    """Displayed size of a near-duplicate, known without rendering it."""
    if edit.kind == "resize":
        return max(1, round(original.width * edit.scale)), max(
            1, round(original.height * edit.scale)
        )
    left, top, right, bottom = edit.crop
    return original.width - left - right, original.height - top - bottom


def render_image(scene: Scene, spec: ImageSpec) -> Image.Image:
    """The upright (displayed) pixels of a row."""
    return render(scene, spec.width, spec.height, spec.texture)


def encode(image: Image.Image, spec: ImageSpec) -> bytes:
    """Encode displayed pixels; EXIF-rotated rows store turned pixels plus the tag."""
    buffer = io.BytesIO()
    if spec.image_format == "jpeg":
        options: dict[str, object] = {"quality": spec.quality}
        if spec.orientation != 1:
            image = image.transpose(_STORE_TRANSPOSE[spec.orientation])
            exif = Image.Exif()
            exif[EXIF_ORIENTATION_TAG] = spec.orientation
            options["exif"] = exif.tobytes()
        image.save(buffer, "JPEG", **options)
    elif spec.image_format == "webp":
        image.save(buffer, "WEBP", quality=spec.quality, method=0)
    elif spec.image_format == "png":
        image.save(buffer, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown image format {spec.image_format!r}")
    return buffer.getvalue()


def render_near_duplicate(scene: Scene, original: ImageSpec, edit: NearDuplicateEdit) -> bytes:
    """Draw the original's scene again, apply the edit and encode without EXIF."""
    image = render_image(scene, original)
    width, height = edited_size(original, edit)
    if edit.kind == "resize":
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    elif edit.kind in ("crop", "reframe"):
        left, top, _, _ = edit.crop
        image = image.crop((left, top, left + width, top + height))
    image_format = "jpeg" if edit.kind == "quality" else original.image_format
    spec = ImageSpec(width, height, image_format, edit.quality, 1, original.texture)
    return encode(image, spec)


def html_page(index: int) -> bytes:
    """An HTML error/landing page, as hosts serve in place of a hot-linked image."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Image unavailable</title>'
        "</head><body><h1>This image is no longer available</h1>"
        f'<p>Please visit our <a href="/gallery/{index}">gallery</a> to see more.</p>'
        + '<div class="ad">Sponsored content</div>' * (5 + index % 20)
        + "</body></html>\n"
    ).encode()
