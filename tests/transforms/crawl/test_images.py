"""process_image: sizes, formats, orientation, transparency, rules and broken input."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.crawl import images
from paircurate.transforms.crawl.images import content_box, picture_phash, process_image
from paircurate.transforms.dedup.phash import phash, phash_hex

from ..helpers import BLUE, RED, decoded, encoded, image_bytes
from . import bombs


def _config(**overrides: object) -> ImageConfig:
    options: dict[str, object] = dict(image_size=100, encode_format="png")
    options.update(overrides)
    return ImageConfig(**options)


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


@pytest.mark.parametrize("source_format", ["PNG", "JPEG"])
@pytest.mark.parametrize(
    ("mode", "landscape", "portrait"),
    [
        ("border", (100, 100), (100, 100)),
        ("keep_ratio", (133, 100), (100, 133)),
        ("keep_ratio_largest", (100, 75), (75, 100)),
        ("center_crop", (100, 100), (100, 100)),
        ("no", (400, 300), (300, 400)),
    ],
)
def test_resize_mode_output_size(
    source_format: str,
    mode: str,
    landscape: tuple[int, int],
    portrait: tuple[int, int],
) -> None:
    for (width, height), expected in (((400, 300), landscape), ((300, 400), portrait)):
        result = process_image(image_bytes(width, height, source_format), _config(resize_mode=mode))
        assert result.ok, result.detail
        assert (result.width, result.height) == expected
        assert (result.original_width, result.original_height) == (width, height)
        assert result.original_format == source_format
        assert decoded(result.encoded).size == expected


def test_border_pads_with_black_around_the_centred_image() -> None:
    result = process_image(image_bytes(400, 300), _config(resize_mode="border"))
    image = decoded(result.encoded).convert("RGB")
    # 400x300 -> 100x75, pasted at y = (100 - 75) // 2 = 12.
    assert image.getpixel((50, 0)) == (0, 0, 0)
    assert image.getpixel((50, 11)) == (0, 0, 0)
    assert image.getpixel((50, 12)) == RED
    assert image.getpixel((50, 86)) == RED
    assert image.getpixel((50, 87)) == (0, 0, 0)
    assert image.getpixel((0, 50)) == RED


def test_center_crop_keeps_the_centre() -> None:
    source = Image.new("RGB", (400, 300), BLUE)
    source.paste(RED, (150, 0, 250, 300))  # the middle quarter is red
    out = io.BytesIO()
    source.save(out, format="PNG")
    result = process_image(out.getvalue(), _config(resize_mode="center_crop"))
    image = decoded(result.encoded).convert("RGB")
    assert image.size == (100, 100)
    # 400x300 -> 133x100, cropped at x = 16: red spans x 50..83 of the scaled image.
    assert _close(image.getpixel((2, 50)), BLUE)
    assert _close(image.getpixel((50, 50)), RED)
    assert _close(image.getpixel((97, 50)), BLUE)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("border", (100, 100)),
        ("keep_ratio", (80, 60)),
        ("keep_ratio_largest", (80, 60)),
        ("center_crop", (80, 60)),
        ("no", (80, 60)),
    ],
)
def test_resize_only_if_bigger_never_upscales(mode: str, expected: tuple[int, int]) -> None:
    config = _config(resize_mode=mode, resize_only_if_bigger=True)
    result = process_image(image_bytes(80, 60), config)
    assert (result.width, result.height) == expected
    if mode == "border":
        image = decoded(result.encoded).convert("RGB")
        assert image.getpixel((50, 50)) == RED and image.getpixel((5, 5)) == (0, 0, 0)


def test_small_image_is_upscaled_without_resize_only_if_bigger() -> None:
    result = process_image(image_bytes(80, 60), _config(resize_mode="keep_ratio"))
    assert (result.width, result.height) == (133, 100)


def test_resize_only_if_bigger_still_shrinks_large_images() -> None:
    config = _config(resize_mode="keep_ratio", resize_only_if_bigger=True)
    result = process_image(image_bytes(400, 300), config)
    assert (result.width, result.height) == (133, 100)


def test_center_crop_of_a_long_thin_image_not_upscaled() -> None:
    # 400x50 is shorter than the target on one side only: crop the width, keep the height.
    config = _config(resize_mode="center_crop", resize_only_if_bigger=True)
    result = process_image(image_bytes(400, 50), config)
    assert (result.width, result.height) == (100, 50)
    image = decoded(result.encoded).convert("RGB")
    assert {image.getpixel((x, y)) for x in (0, 50, 99) for y in (0, 25, 49)} == {RED}


@pytest.mark.parametrize(
    ("encode_format", "pil_format"), [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")]
)
def test_encode_format(encode_format: str, pil_format: str) -> None:
    result = process_image(image_bytes(64, 48), _config(image_size=32, encode_format=encode_format))
    assert result.image_format == encode_format
    image = decoded(result.encoded)
    assert (image.format, image.size, image.mode) == (pil_format, (32, 32), "RGB")


@pytest.mark.parametrize(
    ("encode_format", "quality", "save_options"),
    [
        ("jpg", None, {"format": "JPEG", "quality": 95}),
        ("jpg", 10, {"format": "JPEG", "quality": 10}),
        ("webp", None, {"format": "WEBP", "quality": 95, "method": 4}),
        ("webp", 40, {"format": "WEBP", "quality": 40, "method": 4}),
        ("png", None, {"format": "PNG", "compress_level": 9}),
        ("png", 1, {"format": "PNG", "compress_level": 1}),
    ],
)
def test_encode_quality_gives_exactly_pillows_bytes(
    encode_format: str, quality: int | None, save_options: dict
) -> None:
    source = Image.effect_noise((48, 32), 40).convert("RGB")
    png = io.BytesIO()
    source.save(png, format="PNG")
    config = _config(resize_mode="no", encode_format=encode_format, encode_quality=quality)
    result = process_image(png.getvalue(), config)
    expected = io.BytesIO()
    source.save(expected, **save_options)
    assert result.encoded == expected.getvalue()


def test_lower_jpeg_quality_gives_fewer_bytes() -> None:
    noisy = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(noisy, format="PNG")
    sizes = [
        len(process_image(noisy.getvalue(), _config(encode_format="jpg", encode_quality=q)).encoded)
        for q in (20, 90)
    ]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("encode_format", ["jpg", "png", "webp"])
@pytest.mark.parametrize("source_format", ["PNG", "JPEG"])
def test_same_input_gives_identical_bytes(source_format: str, encode_format: str) -> None:
    noisy = io.BytesIO()
    Image.effect_noise((120, 90), 50).convert("RGB").save(noisy, format=source_format)
    config = _config(image_size=64, encode_format=encode_format)
    first = process_image(noisy.getvalue(), config)
    second = process_image(noisy.getvalue(), config)
    assert first.encoded == second.encoded
    assert first.measurements() == second.measurements()


def test_sha256_is_of_the_original_bytes() -> None:
    body = image_bytes(40, 30, "JPEG")
    result = process_image(body, _config(image_size=20))
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert result.encoded != body


def _rotated_jpeg() -> bytes:
    """40x20 stored, left half red and right half blue, EXIF orientation 6 (rotate 90 CW)."""
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_swaps_sizes_and_output_is_upright() -> None:
    result = process_image(_rotated_jpeg(), _config(resize_mode="no"))
    assert result.ok, result.detail
    assert (result.original_width, result.original_height) == (20, 40)
    assert (result.width, result.height) == (20, 40)
    image = decoded(result.encoded).convert("RGB")
    # Rotated 90 degrees clockwise: the stored left (red) half is now on top.
    assert _close(image.getpixel((10, 5)), RED)
    assert _close(image.getpixel((10, 35)), BLUE)


def test_exif_orientation_with_resize_uses_upright_sizes() -> None:
    result = process_image(_rotated_jpeg(), _config(image_size=10, resize_mode="keep_ratio"))
    assert (result.width, result.height) == (10, 20)
    image = decoded(result.encoded).convert("RGB")
    assert _close(image.getpixel((5, 2)), RED, 30)
    assert _close(image.getpixel((5, 17)), BLUE, 30)


def test_rgba_is_composited_on_white() -> None:
    source = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    source.paste((200, 30, 30, 255), (0, 0, 10, 10))
    out = io.BytesIO()
    source.save(out, format="PNG")
    result = process_image(out.getvalue(), _config(resize_mode="no"))
    image = decoded(result.encoded)
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == RED
    assert image.getpixel((15, 5)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white() -> None:
    source = Image.new("P", (20, 10), 0)
    source.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    source.paste(1, (0, 0, 10, 10))
    out = io.BytesIO()
    source.save(out, format="PNG", transparency=0)
    result = process_image(out.getvalue(), _config(resize_mode="no"))
    image = decoded(result.encoded)
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == RED
    assert image.getpixel((15, 5)) == (255, 255, 255)


@pytest.mark.parametrize(("mode", "color"), [("L", 128), ("CMYK", (0, 255, 255, 0)), ("I;16", 300)])
def test_other_modes_become_rgb(mode: str, color: object) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    result = process_image(
        image_bytes(20, 10, fmt, color=color, mode=mode), _config(resize_mode="no")
    )
    assert result.ok, result.detail
    assert decoded(result.encoded).mode == "RGB"


def test_min_image_size() -> None:
    too_small = process_image(image_bytes(400, 300), _config(min_image_size=301))
    assert too_small.reason == "image_too_small"
    assert too_small.detail == "400x300: shorter side under 301"
    assert too_small.encoded is None and too_small.width is None and too_small.image_format is None
    assert (too_small.original_width, too_small.original_height) == (400, 300)
    assert process_image(image_bytes(400, 300), _config(min_image_size=300)).ok


def test_max_aspect_ratio() -> None:
    wide = process_image(image_bytes(400, 300), _config(max_aspect_ratio=1.3))
    assert wide.reason == "image_aspect_ratio"
    assert wide.detail == "400x300: aspect ratio above 1.3"
    assert wide.encoded is None
    tall = process_image(image_bytes(300, 400), _config(max_aspect_ratio=1.3))
    assert tall.reason == "image_aspect_ratio"
    assert process_image(image_bytes(400, 300), _config(max_aspect_ratio=1.34)).ok


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size but whose pixel data is cut short: decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_max_pixels_refuses_without_decoding() -> None:
    body = _png_header_only(10_000, 10_000)
    assert process_image(body, _config(resize_mode="no")).reason == "image_truncated"
    result = process_image(body, _config(max_pixels=1_000_000))
    assert result.reason == "image_too_many_pixels"
    assert result.detail == "10000x10000 is more than 1000000 pixels"
    assert (result.original_width, result.original_height) == (10_000, 10_000)
    assert result.encoded is None


def test_max_pixels_boundary() -> None:
    assert process_image(image_bytes(100, 100), _config(max_pixels=10_000)).ok
    assert process_image(image_bytes(100, 100), _config(max_pixels=9_999)).reason == (
        "image_too_many_pixels"
    )


def test_decompression_bomb_is_refused() -> None:
    body = _png_header_only(20_000, 20_000)  # over Pillow's own bomb limit
    result = process_image(body, _config(max_pixels=10**12))
    assert result.reason == "image_too_many_pixels"
    assert result.encoded is None


def test_truncated_jpeg() -> None:
    noisy = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(noisy, format="JPEG")
    body = noisy.getvalue()[: len(noisy.getvalue()) // 2]
    result = process_image(body, _config())
    assert result.reason == "image_truncated"
    assert result.detail.startswith("OSError: image file is truncated")
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert (result.original_width, result.original_height) == (64, 64)
    assert result.encoded is None


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><html><body>404 not found</body></html>",
        b"",
        b"GIF89a",
        b"\x89PNG\r\n\x1a\n",
    ],
)
def test_not_an_image(body: bytes) -> None:
    result = process_image(body, _config())
    assert result.reason == "image_decode_error"
    assert result.encoded is None
    # A hash list names bytes, image or not: every digest is recorded for what came back.
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert (result.md5, result.sha1) == (
        hashlib.md5(body).hexdigest(),
        hashlib.sha1(body).hexdigest(),
    )


def test_html_detail() -> None:
    result = process_image(b"<html><body>hello</body></html>", _config())
    assert result.detail == "not an image format Pillow can read"


def test_measurements_leave_out_bytes_and_reason() -> None:
    body = image_bytes(40, 30)
    result = process_image(body, _config(image_size=20))
    assert result.measurements() == {
        "sha256": hashlib.sha256(body).hexdigest(),
        "md5": hashlib.md5(body).hexdigest(),
        "sha1": hashlib.sha1(body).hexdigest(),
        "original_width": 40,
        "original_height": 30,
        "original_format": "PNG",
        "width": 20,
        "height": 20,
        "image_format": "png",
        "image_sha256": result.image_sha256,
        "phash": result.phash,
    }
    assert len(result.image_sha256) == 64 and len(result.phash) == 16


def _picture_png(width: int, height: int) -> tuple[Image.Image, bytes]:
    """Gradients with a few sharp-edged discs on top (detail a pHash can see), and PNG bytes."""
    red = Image.linear_gradient("L").resize((width, height))
    green = red.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    source = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(source)
    for i in range(12):
        x, y = i * 97 % width, i * 61 % height
        draw.ellipse((x, y, x + width // 5, y + height // 4), fill=(i * 50 % 256, i * 90 % 256, 0))
    out = io.BytesIO()
    source.save(out, format="PNG")
    return source, out.getvalue()


def test_shrinking_averages_areas_close_to_lanczos() -> None:
    # 1000x750 -> 100x75: area averages (img2dataset's INTER_AREA), which differ
    # from a LANCZOS of the whole image only at sharp edges, and by little.
    source, body = _picture_png(1000, 750)
    result = process_image(body, _config(resize_mode="keep_ratio_largest"))
    pixels = decoded(result.encoded).convert("RGB").tobytes()
    assert (result.width, result.height) == (100, 75)
    assert pixels == source.resize((100, 75), Image.Resampling.BOX).tobytes()
    full = source.resize((100, 75), Image.Resampling.LANCZOS)
    differences = [abs(a - b) for a, b in zip(pixels, full.tobytes(), strict=True)]
    assert sum(differences) / len(differences) < 2.0, "mean difference in levels of 255"


def test_phash_is_of_the_scaled_image_before_padding() -> None:
    source, body = _picture_png(800, 600)
    result = process_image(body, _config(image_size=256, resize_mode="border"))
    scaled = source.resize((256, 192), Image.Resampling.BOX)
    assert result.phash == phash_hex(picture_phash(scaled))
    # The box-reduced start of the hash's LANCZOS changes a bit or two at most.
    assert abs(int(result.phash, 16) ^ phash(source)).bit_count() <= 2
    assert abs(picture_phash(scaled) ^ phash(scaled)).bit_count() <= 2


@pytest.mark.parametrize(("size", "resize_mode"), [(400, "keep_ratio"), (64, "border")])
def test_phash_of_upscaled_or_small_targets_is_of_the_decoded_image(
    size: int, resize_mode: str
) -> None:
    # Upscaled (300 -> 400) or scaled under 128 px (to 64): the decoded image has more detail.
    source, body = _picture_png(300, 200)
    result = process_image(body, _config(image_size=size, resize_mode=resize_mode))
    assert result.phash == phash_hex(picture_phash(source))


def test_content_box_finds_the_picture_inside_the_border() -> None:
    config = _config(image_size=256, resize_mode="border")
    box = content_box(1000, 500, config)  # scaled to 256 x 128, bars above and below
    assert box == (0, 65, 256, 191)
    image = process_image(_picture_png(1000, 500)[1], config)
    pixels = decoded(image.encoded).convert("RGB")
    assert pixels.getpixel((128, 63)) == pixels.getpixel((128, 192)) == (0, 0, 0)  # the bars
    assert content_box(500, 500, config) is None  # square: no bars
    assert content_box(1000, 500, _config(image_size=256, resize_mode="center_crop")) is None


def test_content_box_of_a_thin_picture_keeps_a_pixel() -> None:
    config = _config(image_size=64, resize_mode="border")
    for width, height in ((1000, 10), (1000, 30), (10, 1000)):
        left, top, right, bottom = content_box(width, height, config)
        assert right - left >= 1 and bottom - top >= 1, (width, height)
    assert content_box(1000, 10, config) == (0, 31, 64, 32)  # scaled to 64 x 1: no inset


def test_byte_and_area_rules_have_their_own_reasons() -> None:
    body = image_bytes(40, 30)
    few = process_image(body, _config(min_image_bytes=len(body) + 1))
    assert (few.reason, few.detail) == (
        "image_too_few_bytes",
        f"{len(body)} bytes: under {len(body) + 1}",
    )
    assert process_image(body, _config(min_image_bytes=len(body))).ok
    large = process_image(body, _config(max_image_area=40 * 30 - 1))
    assert (large.reason, large.detail) == ("image_too_large", "40x30: more than 1199 pixels")
    assert process_image(body, _config(max_image_area=40 * 30)).ok


def _lean_decode(body: bytes) -> Image.Image | None:
    """What the lean decoders make of a body, as process_image asks them."""
    image = Image.open(io.BytesIO(body))
    return images._decode_plain(image, body, images._orientation(image, body))


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("WEBP", "RGB", {"quality": 80}),
        ("WEBP", "RGB", {"quality": 95, "method": 6}),
        ("WEBP", "RGB", {"lossless": True}),
        ("PNG", "RGB", {"compress_level": 6}),
        ("PNG", "RGB", {"compress_level": 0}),
        ("PNG", "RGBA", {"compress_level": 9}),
    ],
)
def test_plain_webp_and_png_decode_to_pillows_pixels(
    fmt: str, mode: str, options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = _picture_png(640, 400)
    if mode == "RGBA":  # a gradient of transparency, composited on white either way
        source.putalpha(Image.linear_gradient("L").resize(source.size))
    body = encoded(source, fmt, **options)
    assert _lean_decode(body) is not None
    config = _config(image_size=256, resize_mode="border", encode_format="jpg")
    by_lean_decoder = process_image(body, config)
    monkeypatch.setattr(images, "_decode_plain", lambda image, body, orientation: None)
    by_pillow = process_image(body, config)
    assert by_lean_decoder.ok, by_lean_decoder.detail
    assert by_lean_decoder.measurements() == by_pillow.measurements()
    assert by_lean_decoder.encoded == by_pillow.encoded


def _png16(size: tuple[int, int]) -> bytes:
    pixels = np.full((size[1], size[0], 3), 40000, np.uint16)
    return cv2.imencode(".png", pixels)[1].tobytes()


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        (encoded(Image.new("RGB", (60, 40), (0, 90, 200)), "WEBP"), True),
        (encoded(Image.new("RGBA", (60, 40), (255, 0, 0, 128)), "WEBP"), False),  # alpha
        (encoded(Image.new("RGB", (60, 40), (0, 90, 200)), "PNG"), True),
        (encoded(Image.new("RGBA", (60, 40), (255, 0, 0, 128)), "PNG"), True),
        (encoded(Image.new("RGB", (60, 40), (0, 90, 200)).quantize(8), "PNG"), False),  # palette
        (encoded(Image.new("L", (60, 40), 90), "PNG"), False),  # grey
        (_png16((60, 40)), False),  # 16 bits per sample
        (encoded(Image.new("RGB", (60, 40), (0, 90, 200)), "JPEG"), False),
    ],
)
def test_lean_decoders_take_only_plain_webp_and_png(body: bytes, taken: bool) -> None:
    assert (_lean_decode(body) is not None) == taken


@pytest.mark.parametrize("orientation", [1, 3])
def test_png_with_exif_gives_pillows_result(orientation: int, monkeypatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = encoded(_picture_png(300, 200)[0], "PNG", exif=exif.tobytes())
    config = _config(image_size=128, resize_mode="border", encode_format="jpg")
    result = process_image(body, config)
    monkeypatch.setattr(images, "_decode_plain", lambda image, body, orientation: None)
    assert result.ok, result.detail
    assert result.encoded == process_image(body, config).encoded


def test_a_png_gamma_chunk_changes_no_pixel() -> None:
    """Pillow ignores gAMA; so must the lean decoder, or one image would get two looks."""
    source, _ = _picture_png(120, 80)
    body = encoded(source, "PNG")
    end_of_ihdr = 8 + 8 + 13 + 4
    gamma = b"gAMA" + struct.pack(">I", 45455)  # 1 / 2.2
    chunk = struct.pack(">I", 4) + gamma + struct.pack(">I", zlib.crc32(gamma))
    with_gamma = body[:end_of_ihdr] + chunk + body[end_of_ihdr:]
    lean = _lean_decode(with_gamma)
    assert lean is not None
    assert lean.tobytes() == Image.open(io.BytesIO(body)).convert("RGB").tobytes()


def test_a_truncated_png_keeps_pillows_reason() -> None:
    body = encoded(_picture_png(300, 200)[0], "PNG")
    result = process_image(body[: len(body) // 2], _config())
    assert result.reason == "image_truncated", result.detail


def test_rotated_png_and_webp_are_upright() -> None:
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    for fmt in ("PNG", "WEBP"):
        body = encoded(
            stored, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {})
        )
        result = process_image(body, _config(resize_mode="no"))
        assert (result.original_width, result.original_height) == (20, 40), fmt
        image = decoded(result.encoded).convert("RGB")
        assert _close(image.getpixel((10, 5)), RED), fmt
        assert _close(image.getpixel((10, 35)), BLUE), fmt


class _Decoded(Exception):
    """Raised by the spies below: something decoded pixels or opened a refused canvas."""


@pytest.mark.parametrize(
    ("make", "size", "format_"),
    [
        (lambda: bombs.png_bomb(13300, 13300, exif="after"), (13300, 13300), "PNG"),
        (lambda: bombs.png_bomb(13300, 13300, exif="before"), (13300, 13300), "PNG"),
        (lambda: bombs.jpeg_bomb(12000, 12000), (12000, 12000), "JPEG"),
        (lambda: bombs.webp_bomb(12000, 12000), (12000, 12000), "WEBP"),
        (lambda: bombs.gif_bomb(12000, 12000), (12000, 12000), "GIF"),
    ],
    ids=["png-exif-after-pixels", "png-exif-before-pixels", "jpeg", "webp-animated", "gif"],
)
def test_an_image_over_max_pixels_is_refused_before_any_decode(
    make, size: tuple[int, int], format_: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under Pillow's own bomb limit, over ours: refused on its header, nothing decoded
    (no ``load``), and an extended WebP not even opened (libwebp allocates its canvas)."""
    body = make()
    opened = Image.open

    def open_unless_webp(*args, **kwargs):
        image = opened(*args, **kwargs)
        if image.format == "WEBP":
            raise _Decoded("opened a WebP canvas over the limit")
        return image

    def no_load(self, *args, **kwargs):
        raise _Decoded("decoded the pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    monkeypatch.setattr(images.Image, "open", open_unless_webp)
    result = process_image(body, _config())  # --max-pixels' default: 100 million
    assert (result.reason, result.original_format) == ("image_too_many_pixels", format_)
    assert (result.original_width, result.original_height) == size
    assert result.detail == f"{size[0]}x{size[1]} is more than 100000000 pixels"


def test_a_png_refused_by_a_size_rule_is_not_decoded_for_its_exif(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_load(self, *args, **kwargs):
        raise _Decoded("decoded the pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    result = process_image(bombs.png_bomb(9000, 9000), _config(max_image_area=1_000_000))
    assert (result.reason, result.original_width) == ("image_too_large", 9000)
