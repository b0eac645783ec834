"""Decode, check, resize and re-encode one downloaded image.

The image is decoded once: for JPEG, Pillow's draft mode lets libjpeg decode at
1/2, 1/4 or 1/8 scale when the target is that much smaller, which is most of
the CPU saved on large web photos. Shrinking then averages areas (BOX, as
OpenCV's INTER_AREA and so img2dataset downscale), in one pass and with no
LANCZOS; only enlarging interpolates with LANCZOS. The pHash is taken of the
scaled image, before any padding or cropping, rather than of another reduction
of the decoded one.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pyspng
from PIL import Image, ImageOps, UnidentifiedImageError

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.dedup.phash import phash, phash_hex

_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_ORIENTATION_TAG = 0x0112


@dataclass
class ImageResult:
    """What was measured on an image, the re-encoded bytes, or why it was refused."""

    sha256: str
    md5: str | None = None
    sha1: str | None = None
    reason: str | None = None
    detail: str | None = None
    original_width: int | None = None
    original_height: int | None = None
    original_format: str | None = None
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    image_sha256: str | None = None
    phash: str | None = None
    encoded: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def measurements(self) -> dict:
        """Every field but the bytes: what goes into the ledger."""
        return {k: v for k, v in self.__dict__.items() if k not in ("encoded", "reason", "detail")}


def body_digests(body: bytes) -> dict[str, str]:
    """The digests of the bytes as downloaded that hash lists name them by."""
    return {
        "sha256": hashlib.sha256(body).hexdigest(),
        "md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(body, usedforsecurity=False).hexdigest(),
    }


def process_image(body: bytes, config: ImageConfig) -> ImageResult:
    result = ImageResult(**body_digests(body))
    try:
        image, orientation = _open_checked(body, config, result)
        if result.reason is None:
            image = _decode(image, body, config, result, orientation)
            scaled = scale(image, config)
            result.phash = phash_hex(picture_phash(_phash_source(image, scaled)))
            final = frame(scaled, config)
            result.image_sha256 = hashlib.sha256(final.tobytes()).hexdigest()
            result.width, result.height = final.size
            result.encoded = encode(final, config)
            result.image_format = config.encode_format
    except _Refused:
        pass
    except Image.DecompressionBombError as error:
        result.reason, result.detail = "image_too_many_pixels", str(error)
    except UnidentifiedImageError:
        result.reason, result.detail = "image_decode_error", "not an image format Pillow can read"
    except (OSError, SyntaxError, ValueError) as error:
        text = str(error)
        truncated = "truncated" in text or "broken data stream" in text
        result.reason = "image_truncated" if truncated else "image_decode_error"
        result.detail = f"{type(error).__name__}: {text}"[:300]
    except Exception as error:  # noqa: BLE001 - Pillow plugins raise many types on hostile input
        result.reason = "image_decode_error"
        result.detail = f"{type(error).__name__}: {error}"[:300]
    return result


def _open_checked(body: bytes, config: ImageConfig, result: ImageResult) -> tuple[Image.Image, int]:
    """The opened image and its EXIF orientation; sizes (upright) and format go in ``result``.

    The sizes are checked against ``--max-pixels`` and the size rules before the
    EXIF orientation is looked up, since Pillow decodes a whole PNG to find an
    EXIF chunk that follows its pixels; the rules do not care which side is the
    width, so the orientation may come after them.
    """
    _check_webp_canvas(body, config, result)
    if result.reason is not None:
        raise _Refused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(body))
    width, height = image.size
    result.original_width, result.original_height = width, height
    result.original_format = image.format
    if width * height > config.max_pixels:
        result.reason = "image_too_many_pixels"
        result.detail = f"{width}x{height} is more than {config.max_pixels} pixels"
        raise _Refused
    _apply_rules(result, config, len(body))
    if result.reason is not None and image.format == "PNG":
        raise _Refused  # its orientation could cost a decode; the sizes stay as stored
    orientation = _orientation(image, body)
    if orientation in _ROTATED:
        result.original_width, result.original_height = height, width
    return image, orientation


class _Refused(Exception):
    """The image was refused on its header alone: ``result`` holds why."""


def _check_webp_canvas(body: bytes, config: ImageConfig, result: ImageResult) -> None:
    """An extended WebP's canvas against --max-pixels, before Pillow opens it.

    Pillow opens a WebP through libwebp's animation decoder, which allocates
    canvas buffers as it is created: the size is read here from the VP8X chunk.
    """
    if body[:4] != b"RIFF" or body[8:16] != b"WEBPVP8X" or len(body) < 30:
        return
    width = int.from_bytes(body[24:27], "little") + 1
    height = int.from_bytes(body[27:30], "little") + 1
    if width * height > config.max_pixels:
        result.original_width, result.original_height = width, height
        result.original_format = "WEBP"
        result.reason = "image_too_many_pixels"
        result.detail = f"{width}x{height} is more than {config.max_pixels} pixels"


# Where a PNG may keep EXIF: an eXIf chunk, or ImageMagick's text chunk. Either may
# follow the pixels, so Pillow decodes the whole PNG to look for them.
_PNG_EXIF_MARKS = (b"eXIf", b"Raw profile type exif")


def _orientation(image: Image.Image, body: bytes) -> int:
    """The EXIF orientation (1: upright), read without decoding a PNG that has no EXIF."""
    if image.format == "PNG" and not any(mark in body for mark in _PNG_EXIF_MARKS):
        return 1
    try:
        return image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to drop the image
        return 1


def _apply_rules(result: ImageResult, config: ImageConfig, size: int) -> None:
    width, height = result.original_width or 0, result.original_height or 0
    shorter, longer = min(width, height), max(width, height)
    if size < config.min_image_bytes:
        result.reason = "image_too_few_bytes"
        result.detail = f"{size} bytes: under {config.min_image_bytes}"
    elif config.max_image_area and width * height > config.max_image_area:
        result.reason = "image_too_large"
        result.detail = f"{width}x{height}: more than {config.max_image_area} pixels"
    elif shorter < config.min_image_size:
        result.reason = "image_too_small"
        result.detail = f"{width}x{height}: shorter side under {config.min_image_size}"
    elif shorter == 0 or longer / shorter > config.max_aspect_ratio:
        result.reason = "image_aspect_ratio"
        result.detail = f"{width}x{height}: aspect ratio above {config.max_aspect_ratio}"


def _decode(
    image: Image.Image, body: bytes, config: ImageConfig, result: ImageResult, orientation: int
) -> Image.Image:
    if image.format == "JPEG" and config.resize_mode != "no":
        target = target_size(result.original_width, result.original_height, config)
        if target is not None:
            image.draft("RGB", target)
    decoded = _decode_plain(image, body, orientation)
    if decoded is None:
        image.load()
    else:
        image = decoded
    ImageOps.exif_transpose(image, in_place=True)  # in place: no copy when upright
    return to_rgb(image)


# Plain images (8 bits per channel, one frame, upright) go to a leaner decoder
# where one gives Pillow's pixels in less time (bench/decoders.py compares them):
# - WebP to OpenCV, which decodes straight to 3 channels, where Pillow's decoder
#   goes through an RGBA canvas built for animations; both use libwebp;
# - PNG to libspng (pyspng), which inflates and unfilters faster than Pillow's
#   own PNG decoder; neither applies a gAMA chunk.
# Anything else, and any body these refuse (a truncated PNG, say), Pillow
# decodes, and its errors give the ledger reason.
_OPENCV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def _decode_plain(image: Image.Image, body: bytes, orientation: int) -> Image.Image | None:
    """A plain upright WebP or PNG, decoded without Pillow; None for Pillow to decode."""
    if image.format not in ("WEBP", "PNG") or getattr(image, "is_animated", False):
        return None
    if orientation != 1:  # rare: Pillow decodes and turns it
        return None
    if image.format == "WEBP":
        return _decode_opencv(image, body) if image.mode == "RGB" else None
    return _decode_spng(image, body)


def _decode_opencv(image: Image.Image, body: bytes) -> Image.Image | None:
    pixels = cv2.imdecode(np.frombuffer(body, np.uint8), _OPENCV_FLAGS)
    if pixels is None or pixels.shape[1::-1] != image.size:
        return None
    return Image.frombuffer("RGB", image.size, pixels, "raw", "BGR", 0, 1)


def _decode_spng(image: Image.Image, body: bytes) -> Image.Image | None:
    # 8-bit RGB or RGBA only: Pillow reads 16-bit samples, palettes and grey its own way.
    # No tiles left: Pillow has decoded it already (looking for EXIF after the pixels).
    if image.mode not in ("RGB", "RGBA") or not image.tile or image.tile[0][3] != image.mode:
        return None
    try:
        pixels = pyspng.load(body, format=image.mode)
    except Exception:  # noqa: BLE001 - a body libspng refuses goes to Pillow for its reason
        return None
    if pixels.dtype != np.uint8 or pixels.shape[1::-1] != image.size:
        return None
    return Image.frombuffer(image.mode, image.size, pixels, "raw", image.mode, 0, 1)


# pHash looks at a 32 x 32 reduction. From 128 px up, a box-reduced start changes
# at most a bit or two of it and saves most of the cost of LANCZOS over every
# pixel: a large image is first reduced to 128 px or more, and the hash's own
# LANCZOS starts from a box reduction to twice its 32 x 32 grid (Pillow's
# reducing gap).
_PHASH_SOURCE = 128
_PHASH_REDUCING_GAP = 2.0


def picture_phash(image: Image.Image) -> int:
    """The pHash Fetch records of an upright RGB picture (see ``_phash_source``)."""
    factor = min(image.size) // _PHASH_SOURCE
    source = image.reduce(factor) if factor > 1 else image
    return phash(source, reducing_gap=_PHASH_REDUCING_GAP)


def _phash_source(decoded: Image.Image, scaled: Image.Image) -> Image.Image:
    """The scaled image where it is smaller and still 128 px or more, else the decoded one.

    The scaled image is the whole picture (padding and cropping come after), so
    hashing it costs a fraction of hashing the decoded one, and an upscale or a
    small target never lowers the detail the hash sees.
    """
    smaller = scaled.width < decoded.width and min(scaled.size) >= _PHASH_SOURCE
    return scaled if smaller else decoded


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited on white, as training images have no alpha."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def target_size(width: int, height: int, config: ImageConfig) -> tuple[int, int] | None:
    """Size the image is scaled to before any padding or cropping, None for no scaling."""
    size = config.image_size
    mode = config.resize_mode
    if mode == "no" or width <= 0 or height <= 0:
        return None
    by_shorter = mode in ("keep_ratio", "center_crop")
    scale = size / (min(width, height) if by_shorter else max(width, height))
    if config.resize_only_if_bigger and scale >= 1:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


# Shrinking averages areas (BOX, what img2dataset's OpenCV INTER_AREA does) and
# enlarging interpolates with LANCZOS (img2dataset's INTER_LANCZOS4): LANCZOS taps
# over a large image would be most of the stage's CPU.
_SHRINK = Image.Resampling.BOX
_ENLARGE = Image.Resampling.LANCZOS


def scale(image: Image.Image, config: ImageConfig) -> Image.Image:
    """The image at its target size (see ``target_size``), not yet padded or cropped."""
    target = target_size(*image.size, config)
    if target is None or target == image.size:
        return image
    if target[0] < image.size[0]:
        return image.resize(target, _SHRINK)
    return image.resize(target, _ENLARGE)


def frame(image: Image.Image, config: ImageConfig) -> Image.Image:
    """Pad (border) or crop (center_crop) a scaled image to the output square."""
    size = config.image_size
    if config.resize_mode == "center_crop":
        width, height = image.size
        if width > size or height > size:
            left, top = max(0, (width - size) // 2), max(0, (height - size) // 2)
            image = image.crop((left, top, left + min(size, width), top + min(size, height)))
    elif config.resize_mode == "border" and image.size != (size, size):
        width, height = image.size
        if width <= size and height <= size:
            left, top = (size - width) // 2, (size - height) // 2
            image = image.crop((-left, -top, size - left, size - top))  # outside: black
    return image


def content_box(
    width: int | None, height: int | None, config: ImageConfig
) -> tuple[int, int, int, int] | None:
    """The picture inside a border-padded shard image of a ``width`` x ``height`` original.

    A model that scores the pair should see the picture, not the black bars.
    The scaled size can differ by a pixel from the one computed from the
    original (JPEG draft decoding), so the box is one pixel inside on each
    padded side, unless the picture is too thin to lose two pixels (an extreme
    aspect ratio): the box always holds at least one pixel each way. None where
    nothing was padded.
    """
    size = config.image_size
    target = target_size(width or 0, height or 0, config)
    if config.resize_mode != "border" or target is None or max(target) > size:
        return None
    scaled_width, scaled_height = target
    if (scaled_width, scaled_height) == (size, size):
        return None
    left, top = (size - scaled_width) // 2, (size - scaled_height) // 2
    inset_x = int(2 < scaled_width < size)
    inset_y = int(2 < scaled_height < size)
    return (
        left + inset_x,
        top + inset_y,
        left + scaled_width - inset_x,
        top + scaled_height - inset_y,
    )


def resize(image: Image.Image, config: ImageConfig) -> Image.Image:
    """Scale, then pad or crop: the image as it goes into a shard."""
    return frame(scale(image, config), config)


def encode(image: Image.Image, config: ImageConfig) -> bytes:
    out = io.BytesIO()
    fmt = _PIL_FORMAT[config.encode_format]
    if fmt == "PNG":
        image.save(out, format=fmt, compress_level=config.quality)
    elif fmt == "WEBP":
        image.save(out, format=fmt, quality=config.quality, method=4)
    else:
        image.save(out, format=fmt, quality=config.quality)
    return out.getvalue()
