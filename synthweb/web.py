"""The synthetic web: a seeded, lazily computed list of image/caption pairs.

Only one byte per row (its label) and the positions of clean rows are kept in
memory; every entry, caption and image is recomputed on request from
(seed, index), so a web of 100,000 pairs costs well under a megabyte.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import multiprocessing
import random
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import captions, images, scenes

LABELS: tuple[str, ...] = (
    "clean",
    "mismatched",
    "duplicate_url",
    "duplicate_bytes",
    "near_duplicate",
    "non_english",
    "junk_caption",
    "tiny_image",
    "extreme_aspect",
    "http_404",
    "http_500",
    "slow",
    "truncated",
    "html",
    "reframed",
)
# "reframed" comes last and is off in the default mix, so that adding it changed no seed's web.
DUPLICATE_LABELS = frozenset({"duplicate_url", "duplicate_bytes", "near_duplicate", "reframed"})
NO_IMAGE_LABELS = frozenset({"http_404", "http_500", "html"})
# Rows that serve their original's very bytes: they draw no image of their own.
SAME_BYTES_LABELS = frozenset({"duplicate_url", "duplicate_bytes"})
_PATH_RE = re.compile(r"^/img/(\d+)\.(jpg|png|webp)$")
# Purposes that give each row several independent random streams.
_SCENE, _CAPTION, _IMAGE, _EDIT, _ORIGINAL = range(1, 6)


@dataclass(frozen=True)
class WebMix:
    """Fraction of rows for each noisy label; the remaining rows are clean."""

    mismatched: float = 0.08
    duplicate_url: float = 0.04
    duplicate_bytes: float = 0.03
    near_duplicate: float = 0.05
    non_english: float = 0.12
    junk_caption: float = 0.04
    tiny_image: float = 0.02
    extreme_aspect: float = 0.02
    http_404: float = 0.02
    http_500: float = 0.01
    slow: float = 0.005
    truncated: float = 0.01
    html: float = 0.01
    reframed: float = 0.0
    """Re-framed copies: 5-10 % cropped off, beyond pHash's reach (see images.reframe_edit)."""

    def __post_init__(self) -> None:
        for name, value in self.fractions().items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"WebMix.{name}={value} must be between 0 and 1")
        total = sum(self.fractions().values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"WebMix fractions sum to {total:.3f}; lower some so that sum <= 1")

    @classmethod
    def clean_only(cls) -> WebMix:
        """A web where every row is a clean, matching pair."""
        return cls(**{field.name: 0.0 for field in dataclasses.fields(cls)})

    def fractions(self) -> dict[str, float]:
        """Noisy label -> fraction, in LABELS order."""
        return {label: float(getattr(self, label)) for label in LABELS[1:]}


DEFAULT_MIX = WebMix()


@dataclass(frozen=True)
class WebEntry:
    """One pair of the web with its ground truth."""

    index: int
    path: str
    caption: str
    label: str
    language: str
    duplicate_of: int
    scene: int
    width: int
    height: int
    image_format: str


@dataclass(frozen=True)
class WebResponse:
    """What the server sends for a path; stall means wait before the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stall: bool = False


@dataclass(frozen=True)
class _Row:
    """An entry plus what is needed to draw its bytes."""

    entry: WebEntry
    spec: images.ImageSpec | None = None
    edit: images.NearDuplicateEdit | None = None


def label_counts(n_pairs: int, mix: WebMix) -> dict[str, int]:
    """Rows per label: rounded fractions, at least one per used label when n allows."""
    wanted = {label: f for label, f in mix.fractions().items() if f > 0}
    counts = {label: int(f * n_pairs + 0.5) for label, f in wanted.items()}
    if n_pairs >= len(wanted) + 3:
        counts = {label: max(1, count) for label, count in counts.items()}
    needs_original = any(label in DUPLICATE_LABELS for label in counts)
    budget = n_pairs - (1 if needs_original else 0)
    while sum(counts.values()) > max(budget, 0):
        largest = max(counts, key=lambda label: counts[label])
        counts[largest] -= 1
    counts = {label: count for label, count in counts.items() if count > 0}
    return {"clean": n_pairs - sum(counts.values()), **counts}


def _shuffled_labels(n_pairs: int, seed: int, mix: WebMix) -> np.ndarray:
    """Label codes in a seeded order where a clean row precedes every duplicate."""
    counts = label_counts(n_pairs, mix)
    codes = np.repeat(
        np.array([LABELS.index(label) for label in counts], dtype=np.uint8),
        list(counts.values()),
    )
    codes = codes[np.random.default_rng([seed, 0x5EB]).permutation(n_pairs)]
    duplicate_codes = [LABELS.index(label) for label in DUPLICATE_LABELS]
    duplicates = np.flatnonzero(np.isin(codes, duplicate_codes))
    cleans = np.flatnonzero(codes == 0)
    if duplicates.size and cleans.size and cleans[0] > duplicates[0]:
        first_dup, first_clean = duplicates[0], cleans[0]
        codes[first_dup], codes[first_clean] = codes[first_clean], codes[first_dup]
    return codes


class SyntheticWeb:
    """A deterministic web of n_pairs image/caption pairs, drawn from (seed, index)."""

    def __init__(
        self,
        n_pairs: int,
        seed: int = 0,
        mix: WebMix = DEFAULT_MIX,
        cache_size: int = 256,
    ) -> None:
        if n_pairs < 0:
            raise ValueError(f"n_pairs={n_pairs} must be >= 0")
        if seed < 0:
            raise ValueError(f"seed={seed} must be >= 0")
        self.n_pairs = n_pairs
        self.seed = seed
        self.mix = mix
        self._labels = _shuffled_labels(n_pairs, seed, mix)
        self._clean_rows = np.flatnonzero(self._labels == 0)
        self._cache_size = cache_size
        self._row = functools.lru_cache(maxsize=4096)(self._build_row)
        self._rendered = functools.lru_cache(maxsize=cache_size)(self._encode_row)
        self._mirrored: dict[int, bytes] = {}

    def __reduce__(self) -> tuple[type[SyntheticWeb], tuple[int, int, WebMix, int]]:
        """Pickle as its arguments (the caches are rebuilt), e.g. for worker processes."""
        return (SyntheticWeb, (self.n_pairs, self.seed, self.mix, self._cache_size))

    def __len__(self) -> int:
        return self.n_pairs

    def __iter__(self) -> Iterator[WebEntry]:
        for index in range(self.n_pairs):
            yield self.entry(index)

    def entry(self, index: int) -> WebEntry:
        """The row at index, with its ground truth."""
        if not 0 <= index < self.n_pairs:
            raise IndexError(f"index {index} out of range for a web of {self.n_pairs} pairs")
        return self._row(index).entry

    def label(self, index: int) -> str:
        """The label of a row, without building the entry."""
        return LABELS[int(self._labels[index])]

    def edit_kind(self, index: int) -> str | None:
        """How a duplicate row was edited ("quality", "resize", "crop", "reframe")."""
        edit = self._row(index).edit
        return edit.kind if edit is not None else None

    def scene(self, scene_id: int) -> scenes.Scene:
        """The attributes of a scene (WebEntry.scene), for evaluating captions and scores."""
        if not 0 <= scene_id < self.n_pairs:
            raise IndexError(f"scene {scene_id} out of range for a web of {self.n_pairs} pairs")
        return scenes.random_scene(self._rng(scene_id, _SCENE))

    def image_bytes(self, index: int) -> bytes:
        """The image body served for a row (cut in half for "truncated" rows)."""
        entry = self.entry(index)
        if entry.label in NO_IMAGE_LABELS:
            raise ValueError(f"row {index} is labelled {entry.label!r} and serves no image")
        if entry.label in SAME_BYTES_LABELS:
            return self._encoded(entry.duplicate_of)
        body = self._encoded(index)
        return body[: len(body) // 2] if entry.label == "truncated" else body

    def mirror(self, processes: int = 1) -> int:
        """Render every image body once and keep them all; returns the bodies' total size.

        Every later request is then served from memory, byte for byte what it would
        render again: runs that download the same pool several times (one per filter
        variant) share one rendering, which is most of what serving costs. With
        ``processes`` > 1 the bodies are rendered in that many processes.
        """
        owners = [
            index
            for index in range(self.n_pairs)
            if self.label(index) not in NO_IMAGE_LABELS | SAME_BYTES_LABELS
        ]
        if processes > 1:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                batches = [owners[start : start + 256] for start in range(0, len(owners), 256)]
                rendered = pool.map(_render_bodies, [self] * len(batches), batches)
                bodies = itertools.chain.from_iterable(rendered)
                self._mirrored.update(zip(owners, bodies, strict=True))
        else:
            self._mirrored.update((index, self._encode_row(index)) for index in owners)
        return sum(
            len(self.image_bytes(index))
            for index in range(self.n_pairs)
            if self.label(index) not in NO_IMAGE_LABELS
        )

    def _encoded(self, index: int) -> bytes:
        """The full encoded bytes of a row that draws its own image: mirrored or rendered."""
        body = self._mirrored.get(index)
        return body if body is not None else self._rendered(index)

    def response(self, path: str) -> WebResponse:
        """What the server sends for a URL path (query string already removed)."""
        match = _PATH_RE.match(path)
        index = int(match.group(1)) if match else -1
        if not 0 <= index < self.n_pairs or self.entry(index).path != path:
            return _text_response(404, "text/html", "<html><body>Not Found</body></html>")
        entry = self.entry(index)
        if entry.label == "http_404":
            return _text_response(404, "text/html", "<html><body>Not Found</body></html>")
        if entry.label == "http_500":
            return _text_response(500, "text/plain", "Internal Server Error")
        if entry.label == "html":
            return WebResponse(200, (("Content-Type", "image/jpeg"),), images.html_page(index))
        content_type = images.CONTENT_TYPES[entry.image_format]
        body = self.image_bytes(index)
        return WebResponse(200, (("Content-Type", content_type),), body, entry.label == "slow")

    def _rng(self, index: int, purpose: int) -> random.Random:
        """An independent random stream per (seed, row, purpose)."""
        return random.Random(((self.seed << 40) + index) * 8 + purpose)

    def _original(self, index: int) -> int:
        """A clean row before index, chosen by the row's own stream."""
        before = int(np.searchsorted(self._clean_rows, index))
        return int(self._clean_rows[self._rng(index, _ORIGINAL).randrange(before)])

    def _build_row(self, index: int) -> _Row:
        label = self.label(index)
        if label in DUPLICATE_LABELS:
            return self._duplicate_row(index, label)
        scene = self.scene(index)
        spec = _spec_for(label, self._rng(index, _IMAGE))
        caption, language = self._caption(index, label, scene)
        entry = WebEntry(
            index=index,
            path=_path(index, spec.image_format if spec else "jpeg"),
            caption=caption,
            label=label,
            language=language,
            duplicate_of=-1,
            scene=index,
            width=spec.width if spec else 0,
            height=spec.height if spec else 0,
            image_format=spec.image_format if spec else "",
        )
        return _Row(entry, spec)

    def _caption(self, index: int, label: str, scene: scenes.Scene) -> tuple[str, str]:
        rng = self._rng(index, _CAPTION)
        if label == "junk_caption":
            return captions.junk_caption(rng), ""
        if label == "non_english":
            language = rng.choice(captions.LANGUAGES[1:])
            return captions.describe(scene, language, rng), language
        if label == "mismatched":
            scene = scenes.different_scene(scene, rng)
        return captions.describe(scene, "en", rng), "en"

    def _duplicate_row(self, index: int, label: str) -> _Row:
        original_index = self._original(index)
        original = self._row(original_index)
        base = dataclasses.replace(original.entry, index=index, label=label)
        base = dataclasses.replace(base, duplicate_of=original_index)
        if label == "duplicate_url":
            return _Row(base)
        if label == "duplicate_bytes":
            return _Row(dataclasses.replace(base, path=_path(index, base.image_format)))
        if original.spec is None:
            raise RuntimeError(f"original row {original_index} of row {index} has no image")
        if label == "reframed":
            edit = images.reframe_edit(original.spec, self._rng(index, _EDIT))
        else:
            edit = images.near_duplicate_edit(original.spec, self._rng(index, _EDIT))
        width, height = images.edited_size(original.spec, edit)
        image_format = "jpeg" if edit.kind == "quality" else original.spec.image_format
        entry = dataclasses.replace(
            base,
            path=_path(index, image_format),
            caption=captions.edit_caption(base.caption, self._rng(index, _CAPTION)),
            width=width,
            height=height,
            image_format=image_format,
        )
        return _Row(entry, original.spec, edit)

    def _encode_row(self, index: int) -> bytes:
        """Full encoded bytes of a row that draws its own image (cached)."""
        row = self._row(index)
        if row.spec is None:
            raise ValueError(f"row {index} ({row.entry.label}) has no image of its own")
        scene = self.scene(row.entry.scene)
        if row.edit is not None:
            return images.render_near_duplicate(scene, row.spec, row.edit)
        return images.encode(images.render_image(scene, row.spec), row.spec)


def _render_bodies(web: SyntheticWeb, indexes: list[int]) -> list[bytes]:
    """The encoded bodies of rows that draw their own image, in a worker process."""
    return [web._encode_row(index) for index in indexes]


def _spec_for(label: str, rng: random.Random) -> images.ImageSpec | None:
    """Image parameters by label; None for rows that serve no image."""
    if label in NO_IMAGE_LABELS:
        return None
    if label == "tiny_image":
        return images.tiny_spec(rng)
    if label == "extreme_aspect":
        return images.extreme_aspect_spec(rng)
    if label == "truncated":
        return images.truncated_spec(rng)
    return images.web_spec(rng)


def _path(index: int, image_format: str) -> str:
    return f"/img/{index:06d}.{images.EXTENSIONS[image_format]}"


def _text_response(status: int, content_type: str, text: str) -> WebResponse:
    return WebResponse(status, (("Content-Type", content_type),), text.encode())
