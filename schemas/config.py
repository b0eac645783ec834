"""Job configuration: one frozen dataclass per concern, validated on creation.

These dataclasses are the single source of the options: the CLI flags, their
help text and the README's option table are all generated from the fields and
their ``metadata["help"]``. A field named ``image_size`` becomes ``--image-size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
ENCODE_FORMATS = ("jpg", "png", "webp")
DEFAULT_QUALITY = {"jpg": 95, "webp": 95, "png": 9}


def opt(default, help: str, **extra):  # noqa: A002 - "help" mirrors argparse
    """A dataclass field that is also a documented CLI option."""
    return field(default=default, metadata={"help": help, **extra})


class ConfigError(ValueError):
    """A bad option value; the message says which flag and what to change."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class InputConfig:
    """Where the URL + caption lists are and which columns matter."""

    input: tuple[str, ...] = opt(
        (),
        "input files, folders or globs (Parquet, CSV, TSV, JSONL, optionally .gz), "
        "on any filesystem Beam knows; repeat or comma-separate",
        nargs="+",
    )
    url_col: str = opt("url", "name of the URL column")
    caption_col: str = opt("caption", "name of the caption column")
    keep_cols: tuple[str, ...] = opt(
        (), "extra input columns to carry into the ledger, shard Parquet and sample JSON"
    )

    def __post_init__(self) -> None:
        _require(bool(self.input), "--input: give at least one file, folder or glob")
        _require(bool(self.url_col), "--url-col must not be empty")
        _require(bool(self.caption_col), "--caption-col must not be empty")
        for name in self.keep_cols:
            _require(
                name not in (self.url_col, self.caption_col),
                f"--keep-cols: {name!r} is already the URL or caption column",
            )


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched."""

    download_threads: int = opt(32, "concurrent requests per worker")
    timeout: float = opt(10.0, "seconds allowed to connect and between bytes read")
    max_bytes: int = opt(20_000_000, "largest response body accepted, in bytes")
    max_redirects: int = opt(5, "redirects followed before giving up")
    user_agent: str = opt(
        "Mozilla/5.0 (compatible; paircurate/0.1)",
        "User-Agent header sent with every request",
    )
    allow_private_networks: bool = opt(
        False,
        "allow URLs that resolve to loopback, private or link-local addresses "
        "(off by default: a URL list must not reach internal services)",
    )

    def __post_init__(self) -> None:
        _require(self.download_threads >= 1, "--download-threads must be at least 1")
        _require(self.timeout > 0, "--timeout must be positive (seconds)")
        _require(self.max_bytes > 0, "--max-bytes must be positive")
        _require(self.max_redirects >= 0, "--max-redirects must be 0 or more")


@dataclass(frozen=True)
class ImageConfig:
    """How downloaded images are checked, resized and re-encoded."""

    image_size: int = opt(256, "target size in pixels (meaning depends on --resize-mode)")
    resize_mode: str = opt(
        "border",
        "no: keep as is; border: fit the longer side, pad to a square; keep_ratio: "
        "shorter side = size; keep_ratio_largest: longer side = size; center_crop: "
        "shorter side = size, then crop the centre square",
        choices=RESIZE_MODES,
    )
    resize_only_if_bigger: bool = opt(False, "never upscale images smaller than the target")
    encode_format: str = opt("jpg", "format of images in the shards", choices=ENCODE_FORMATS)
    encode_quality: int | None = opt(
        None, "JPEG/WebP quality 0-100 (default 95) or PNG compression 0-9 (default 9)"
    )
    min_image_size: int = opt(0, "drop images whose shorter side is smaller (pixels)")
    max_aspect_ratio: float = opt(math.inf, "drop images whose longer/shorter side is larger")
    max_pixels: int = opt(
        100_000_000, "refuse images with more pixels than this before decoding them"
    )

    def __post_init__(self) -> None:
        _require(self.image_size >= 1, "--image-size must be at least 1")
        _require(self.resize_mode in RESIZE_MODES, f"--resize-mode: pick one of {RESIZE_MODES}")
        _require(
            self.encode_format in ENCODE_FORMATS, f"--encode-format: pick one of {ENCODE_FORMATS}"
        )
        if self.encode_quality is not None:
            top = 9 if self.encode_format == "png" else 100
            _require(
                0 <= self.encode_quality <= top,
                f"--encode-quality for {self.encode_format} must be between 0 and {top}",
            )
        _require(self.min_image_size >= 0, "--min-image-size must be 0 or more")
        _require(self.max_aspect_ratio >= 1, "--max-aspect-ratio must be at least 1")
        _require(self.max_pixels >= 1, "--max-pixels must be at least 1")

    @property
    def quality(self) -> int:
        if self.encode_quality is not None:
            return self.encode_quality
        return DEFAULT_QUALITY[self.encode_format]


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the outputs are written."""

    output: str = opt("", "output folder: local path or a gs:// / s3:// style URL")
    shard_size: int = opt(10_000, "target samples per shard (rows fetched per chunk)")

    def __post_init__(self) -> None:
        _require(bool(self.output), "--output: name the folder the outputs go to")
        _require(self.shard_size >= 1, "--shard-size must be at least 1")


@dataclass(frozen=True)
class JobConfig:
    """Everything one run needs, grouped by concern."""

    inputs: InputConfig
    download: DownloadConfig = field(default_factory=DownloadConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(output="out"))


SECTIONS: dict[str, type] = {
    "inputs": InputConfig,
    "download": DownloadConfig,
    "image": ImageConfig,
    "output": OutputConfig,
}
