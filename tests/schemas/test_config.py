"""Configuration dataclasses: every bad value names its flag."""

from __future__ import annotations

import dataclasses
import math

import pytest

from paircurate.schemas.config import (
    DEFAULT_QUALITY,
    SECTIONS,
    ConfigError,
    DownloadConfig,
    ImageConfig,
    InputConfig,
    JobConfig,
    OutputConfig,
)

INPUT = {"input": ("pairs.csv",)}
OUTPUT = {"output": "out"}


@pytest.mark.parametrize(
    ("cls", "values", "flag"),
    [
        (InputConfig, {}, "--input"),
        (InputConfig, {"input": ()}, "--input"),
        (InputConfig, {**INPUT, "url_col": ""}, "--url-col"),
        (InputConfig, {**INPUT, "caption_col": ""}, "--caption-col"),
        (InputConfig, {**INPUT, "keep_cols": ("url",)}, "--keep-cols"),
        (InputConfig, {**INPUT, "caption_col": "text", "keep_cols": ("text",)}, "--keep-cols"),
        (DownloadConfig, {"download_threads": 0}, "--download-threads"),
        (DownloadConfig, {"timeout": 0}, "--timeout"),
        (DownloadConfig, {"timeout": -1.0}, "--timeout"),
        (DownloadConfig, {"timeout": math.nan}, "--timeout"),
        (DownloadConfig, {"max_bytes": 0}, "--max-bytes"),
        (DownloadConfig, {"max_redirects": -1}, "--max-redirects"),
        (ImageConfig, {"image_size": 0}, "--image-size"),
        (ImageConfig, {"resize_mode": "stretch"}, "--resize-mode"),
        (ImageConfig, {"encode_format": "gif"}, "--encode-format"),
        (ImageConfig, {"encode_format": "jpeg"}, "--encode-format"),
        (ImageConfig, {"encode_quality": 101}, "--encode-quality"),
        (ImageConfig, {"encode_quality": -1}, "--encode-quality"),
        (ImageConfig, {"encode_format": "webp", "encode_quality": 101}, "--encode-quality"),
        (ImageConfig, {"encode_format": "png", "encode_quality": 10}, "--encode-quality"),
        (ImageConfig, {"min_image_size": -1}, "--min-image-size"),
        (ImageConfig, {"max_aspect_ratio": 0.5}, "--max-aspect-ratio"),
        (ImageConfig, {"max_aspect_ratio": math.nan}, "--max-aspect-ratio"),
        (ImageConfig, {"max_pixels": 0}, "--max-pixels"),
        (OutputConfig, {}, "--output"),
        (OutputConfig, {**OUTPUT, "shard_size": 0}, "--shard-size"),
    ],
)
def test_invalid_value_names_its_flag(cls: type, values: dict, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        cls(**values)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_messages_say_what_to_change() -> None:
    with pytest.raises(ConfigError) as raised:
        ImageConfig(encode_format="png", encode_quality=10)
    assert str(raised.value) == "--encode-quality for png must be between 0 and 9"
    with pytest.raises(ConfigError) as raised:
        ImageConfig(resize_mode="stretch")
    assert "keep_ratio_largest" in str(raised.value)


@pytest.mark.parametrize(
    "values",
    [
        {"encode_format": "png", "encode_quality": 0},
        {"encode_format": "png", "encode_quality": 9},
        {"encode_format": "jpg", "encode_quality": 0},
        {"encode_format": "jpg", "encode_quality": 100},
        {"encode_format": "webp", "encode_quality": 100},
        {"max_aspect_ratio": 1.0},
        {"min_image_size": 0, "image_size": 1, "max_pixels": 1},
    ],
)
def test_boundary_values_are_valid(values: dict) -> None:
    ImageConfig(**values)


@pytest.mark.parametrize(("encode_format", "quality"), [("jpg", 95), ("webp", 95), ("png", 9)])
def test_quality_defaults_per_format(encode_format: str, quality: int) -> None:
    assert ImageConfig(encode_format=encode_format).quality == quality
    assert DEFAULT_QUALITY[encode_format] == quality


def test_explicit_quality_wins() -> None:
    assert ImageConfig(encode_format="jpg", encode_quality=0).quality == 0
    assert ImageConfig(encode_format="png", encode_quality=3).quality == 3


def test_defaults() -> None:
    image = ImageConfig()
    assert (image.image_size, image.resize_mode, image.encode_format) == (256, "border", "jpg")
    assert image.max_aspect_ratio == math.inf and image.min_image_size == 0
    download = DownloadConfig()
    assert download.allow_private_networks is False
    assert (download.download_threads, download.max_redirects) == (32, 5)
    job = JobConfig(inputs=InputConfig(**INPUT))
    assert job.output.output == "out"
    assert job.download == DownloadConfig()


def test_configs_are_frozen() -> None:
    config = DownloadConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 1.0  # type: ignore[misc]


def test_every_option_is_documented() -> None:
    for cls in SECTIONS.values():
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name}"
