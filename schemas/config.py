"""Job configuration: one frozen dataclass per concern, validated on creation.

These dataclasses are the single source of the options: the CLI flags, their
help text and docs/options.md's table are all generated from the fields and
their ``metadata["help"]``. A field named ``image_size`` becomes ``--image-size``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

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


DEFAULT_JUNK_CAPTIONS = (
    "image", "images", "photo", "photos", "picture", "pic", "img", "untitled",
    "no title", "click here", "click to enlarge", "thumbnail", "placeholder",
    "download", "view image", "logo", "icon", "banner", "null", "none", "undefined",
)  # fmt: skip
LANGID_BACKENDS = ("fasttext", "pycld2", "py3langid", "langdetect")


@dataclass(frozen=True)
class CaptionConfig:
    """How captions are normalised, judged and labelled with their language, before download."""

    min_caption_chars: int = opt(
        6, "drop captions with fewer characters (DataComp's basic filter keeps more than 5)"
    )
    max_caption_chars: int = opt(2000, "drop captions with more characters (0: no limit)")
    min_caption_words: int = opt(
        3, "drop captions with fewer words (DataComp's basic filter keeps more than 2)"
    )
    max_caption_words: int = opt(0, "drop captions with more words (0: no limit)")
    junk_captions: tuple[str, ...] = opt(
        DEFAULT_JUNK_CAPTIONS,
        "captions that say nothing, matched whole after lowercasing and trimming punctuation",
    )
    drop_filename_captions: bool = opt(
        True, "drop captions that are file names (IMG_1234.jpg, DSC_2481) or bare URLs"
    )
    max_nonletter_share: float = opt(
        0.5, "drop captions whose share of non-letter characters (spaces aside) is larger"
    )
    languages: tuple[str, ...] = opt(
        ("any",), "ISO 639-1 codes to keep (e.g. en,de), 'nolang' for uncertain ones; any: keep all"
    )
    langid_backend: str = opt(
        "fasttext",
        "language identifier: fasttext (lid.176 with CLD2's second opinion, the default by "
        "bench/langid.py: most accurate over 14 languages and 34x langdetect's speed), pycld2, "
        "py3langid or langdetect (slow reference); script rules apply to all",
        choices=LANGID_BACKENDS,
    )
    min_language_score: float = opt(
        0.5, "detections less confident than this get the language code 'nolang'"
    )

    def __post_init__(self) -> None:
        for name in ("min_caption_chars", "max_caption_chars", "min_caption_words"):
            _require(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be 0 or more")
        _require(self.max_caption_words >= 0, "--max-caption-words must be 0 or more")
        _require(
            0 <= self.max_nonletter_share <= 1, "--max-nonletter-share must be between 0 and 1"
        )
        _require(0 <= self.min_language_score <= 1, "--min-language-score must be between 0 and 1")
        _require(
            self.langid_backend in LANGID_BACKENDS,
            f"--langid-backend: pick one of {LANGID_BACKENDS}",
        )
        _require(bool(self.languages), "--languages: give codes such as en,de or 'any'")
        for code in self.languages:
            _require(
                code == "any" or code == "nolang" or (len(code) in (2, 3) and code.isalpha()),
                f"--languages: {code!r} is not an ISO 639-1 code, 'nolang' or 'any'",
            )

    @property
    def keeps_every_language(self) -> bool:
        return "any" in self.languages

    def keeps_language(self, language: str | None) -> bool:
        """Whether a caption of ``language`` (a detected code, or 'nolang') passes --languages."""
        return self.keeps_every_language or language in self.languages


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched, and how politely."""

    download_threads: int = opt(32, "concurrent requests per worker")
    image_processes: int = opt(
        -1,
        "processes per worker that decode, check and re-encode the downloaded images; "
        "0 does it in the download threads; -1 (auto) starts one per core, plus one, on the local "
        "in-process runner with one worker, and none on runners that already run a worker "
        "per core",
    )
    image_threads: int = opt(
        -1,
        "images a worker process decodes, checks and re-encodes at once in its download "
        "threads, where it has no image processes; 0: one per core it may use; -1 (auto): 0 "
        "where one process runs every Fetch thread, 2 on runners that run a worker process "
        "per core (set it to the cores per process where a runner runs fewer processes)",
    )
    connect_timeout: float = opt(5.0, "seconds allowed to open a connection")
    timeout: float = opt(10.0, "seconds allowed to wait for the response and between bytes read")
    deadline: float = opt(
        30.0,
        "seconds one attempt may take in all, every phase of every request and redirect "
        "included (connect, TLS, headers, body): a server that trickles bytes slower than this "
        "ends as download_timeout; each host's robots.txt and tdmrep.json get one of their own",
    )
    max_bytes: int = opt(20_000_000, "largest response body accepted, in bytes (also after gunzip)")
    max_redirects: int = opt(5, "redirects followed before giving up")
    retries: int = opt(2, "extra attempts after a connection error, 429 or 5xx (0: try once)")
    retry_timeouts: bool = opt(
        False,
        "retry after a timeout too: off by default, since a host that stalled once mostly "
        "stalls again and every retry holds a thread for the whole timeout; "
        "`paircurate retry-failed` retries timeouts later",
    )
    retry_backoff: float = opt(
        0.5, "seconds before the first retry, doubled for each further one, with jitter"
    )
    max_retry_wait: float = opt(
        30.0,
        "longest wait before a retry, in seconds; a Retry-After asking for more gives up at once",
    )
    max_per_host: int = opt(
        16, "concurrent requests to one host name from one worker process, at most"
    )
    max_bytes_in_flight: int = opt(
        256_000_000,
        "response bytes a worker process holds at once, being read or waiting for the "
        "image work; new downloads wait while they reach it (a body already being read "
        "may pass it, by at most --max-bytes)",
    )
    user_agent: str = opt(
        "Mozilla/5.0 (compatible; paircurate/0.1)",
        "User-Agent header sent with every request",
    )
    user_agent_token: str = opt(
        "",
        "a name for this crawl, appended to the User-Agent as img2dataset does; X-Robots-Tag "
        "directives addressed to it and robots.txt groups for it apply",
    )
    disallowed_header_directives: tuple[str, ...] = opt(
        ("noai", "noimageai", "noml", "noindex", "noimageindex"),
        "X-Robots-Tag directives that opt an image out (download_opted_out); 'none' honours none",
    )
    respect_robots_txt: bool = opt(
        False,
        "fetch each host's robots.txt once and skip URLs it disallows for the agent; an "
        "unreadable one (5xx, 429, no answer) closes the host for two minutes, and its "
        "rows fail as download_robots_unavailable, which retry-failed takes up",
    )
    respect_tdmrep: bool = opt(
        True,
        "honour the W3C TDM Reservation Protocol: a 'tdm-reservation: 1' response header, and "
        "each origin's /.well-known/tdmrep.json, fetched once (download_tdm_reserved); an "
        "unreadable one (5xx, 429, no answer) closes the host for two minutes "
        "(download_tdmrep_unavailable, which retry-failed takes up)",
    )
    respect_ai_preferences: bool = opt(
        True,
        "honour AI-training preferences: the Content-Usage header and robots.txt rule of the IETF "
        "AI Preferences drafts (train-ai=n, or bots=n where train-ai is unstated, and "
        "train-genai=n) and robots.txt's Content-Signal: ai-train=no (download_ai_optout); "
        "reads each host's robots.txt once even without --respect-robots-txt",
    )
    allow_private_networks: bool = opt(
        False,
        "allow URLs that resolve to loopback, private or link-local addresses "
        "(off by default: a URL list must not reach internal services)",
    )

    def __post_init__(self) -> None:
        _require(self.download_threads >= 1, "--download-threads must be at least 1")
        _require(self.image_processes >= -1, "--image-processes must be -1 (auto), 0 or more")
        _require(self.image_threads >= -1, "--image-threads must be -1 (auto), 0 or more")
        for name in ("connect_timeout", "timeout", "deadline"):
            _require(
                getattr(self, name) > 0, f"--{name.replace('_', '-')} must be positive (seconds)"
            )
        _require(self.max_bytes > 0, "--max-bytes must be positive")
        _require(self.max_redirects >= 0, "--max-redirects must be 0 or more")
        _require(self.retries >= 0, "--retries must be 0 or more")
        for name in ("retry_backoff", "max_retry_wait"):
            value = getattr(self, name)
            _require(
                0 <= value < math.inf, f"--{name.replace('_', '-')} must be 0 or more (seconds)"
            )
        _require(self.max_per_host >= 1, "--max-per-host must be at least 1")
        _require(self.max_bytes_in_flight >= 1, "--max-bytes-in-flight must be at least 1")
        _require(
            all(ch.isalnum() or ch in "-_." for ch in self.user_agent_token),
            "--user-agent-token: use letters, digits, '-', '_' and '.' only",
        )
        for directive in self.disallowed_header_directives:
            _require(
                bool(directive) and directive == directive.strip().lower() and "," not in directive,
                f"--disallowed-header-directives: {directive!r} must be one lowercase word",
            )

    @property
    def header_directives(self) -> frozenset[str]:
        """The directives to honour, with the CLI's 'none' meaning no directive at all."""
        return frozenset(self.disallowed_header_directives) - {"none"}


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
    min_image_bytes: int = opt(
        0, "drop images whose downloaded file is smaller, in bytes (LAION dropped under 5000)"
    )
    max_image_area: int = opt(
        0, "drop images with more pixels than this (0: no limit), a rule unlike --max-pixels"
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
        _require(self.min_image_bytes >= 0, "--min-image-bytes must be 0 or more")
        _require(self.max_image_area >= 0, "--max-image-area must be 0 or more")

    @property
    def quality(self) -> int:
        if self.encode_quality is not None:
            return self.encode_quality
        return DEFAULT_QUALITY[self.encode_format]


URL_DEDUP_MODES = ("url", "url_caption", "off")


@dataclass(frozen=True)
class DedupConfig:
    """How duplicate pairs are found and which copy of a duplicate survives."""

    url_dedup: str = opt(
        "url",
        "exact dedup before download: url drops every repeat of a normalised URL; url_caption "
        "only repeats with the same caption too (other captions share one download); off",
        choices=URL_DEDUP_MODES,
    )
    near_duplicates: bool = opt(
        True,
        "drop a pair whose image duplicates another's (same bytes or pHash within "
        "--phash-max-distance) and whose caption is a near-duplicate or the same",
    )
    drop_image_repeats: bool = opt(
        False, "drop every repeat of an image whatever its caption (reason image_duplicate)"
    )
    drop_caption_repeats: bool = opt(
        False,
        "drop every repeat of a near-duplicate caption whatever its image (reason "
        "caption_duplicate); the way to dedup captions in a --text-only run",
    )
    caption_cluster_cap: int = opt(
        0,
        "keep at most this many pairs per near-duplicate caption cluster, best first "
        "(MetaCLIP caps at 20000; 0: no cap)",
    )
    caption_threshold: float = opt(
        0.8, "captions are near-duplicates at this Jaccard similarity of their 5-gram shingles"
    )
    minhash_perm: int = opt(128, "MinHash permutations per caption")
    minhash_bands: int = opt(
        16,
        "LSH bands; with --minhash-rows 7 a pair at Jaccard 0.8 shares a band with "
        "probability 0.977 (16 x 8 gives 0.947)",
    )
    minhash_rows: int = opt(7, "signature values per LSH band")
    minhash_seed: int = opt(1, "seed of the MinHash permutations (datasketch's default is 1)")
    phash_max_distance: int = opt(
        6, "images are near-duplicates when their 64-bit pHashes differ in at most this many bits"
    )
    perceptual_images: bool = opt(
        True, "match images by pHash as well as by exact hashes (sha256 of bytes and of pixels)"
    )
    cluster_rounds: int = opt(
        13,
        "large-star / small-star rounds of the cluster search: a chain of 10,000 near-duplicates "
        "needs 11 and one of 100,000 needs 13 (uids are random); too few split clusters (never "
        "merge them, so duplicates are missed) and are counted as dedup_unconverged_edges",
    )
    semantic_dedup: bool = opt(
        False,
        "drop pairs whose CLIP image embeddings are near-identical to a kept pair's (SemDeDup: "
        "k-means, then cosine links inside each cluster; reason semantic_duplicate); needs "
        "CLIP scoring",
    )
    semantic_threshold: float = opt(
        0.95, "pairs are semantic duplicates at this cosine similarity of their image embeddings"
    )
    semantic_clusters: int = opt(
        0,
        "k-means clusters for --semantic-dedup (0: one per 10,000 scored pairs, at most one "
        "per 40 sampled embeddings)",
    )
    semantic_sample: int = opt(
        100_000, "embeddings k-means trains on (the pairs with the smallest uids)"
    )
    semantic_cluster_cap: int = opt(
        20_000,
        "most pairs compared in one group, which bounds a worker's memory; larger k-means "
        "clusters are split by a second k-means, then by uid",
    )

    def __post_init__(self) -> None:
        _require(self.url_dedup in URL_DEDUP_MODES, f"--url-dedup: pick one of {URL_DEDUP_MODES}")
        _require(self.caption_cluster_cap >= 0, "--caption-cluster-cap must be 0 or more")
        _require(
            0 < self.caption_threshold <= 1, "--caption-threshold must be above 0 and at most 1"
        )
        _require(self.minhash_perm >= 1, "--minhash-perm must be at least 1")
        _require(
            self.minhash_bands >= 1
            and self.minhash_rows >= 1
            and self.minhash_bands * self.minhash_rows <= self.minhash_perm,
            "--minhash-bands x --minhash-rows must be at least 1 and at most --minhash-perm",
        )
        _require(0 <= self.phash_max_distance < 64, "--phash-max-distance must be in 0..63")
        _require(self.cluster_rounds >= 1, "--cluster-rounds must be at least 1")
        _require(-1 <= self.semantic_threshold <= 1, "--semantic-threshold must be in -1..1")
        _require(self.semantic_clusters >= 0, "--semantic-clusters must be 0 (auto) or more")
        _require(self.semantic_sample >= 1, "--semantic-sample must be at least 1")
        _require(self.semantic_cluster_cap >= 2, "--semantic-cluster-cap must be at least 2")

    @property
    def finds_clusters(self) -> bool:
        """Whether any rule needs the duplicate clusters after download."""
        return (
            self.near_duplicates
            or self.drop_image_repeats
            or self.drop_caption_repeats
            or self.caption_cluster_cap > 0
        )


BALANCE_UNMATCHED = ("drop", "keep")


@dataclass(frozen=True)
class BalanceConfig:
    """Concept balancing before download, as MetaCLIP: at most --balance-cap pairs per entry."""

    balance_entries: str = opt(
        "",
        "entry list to match captions against (whole words, case-insensitive): a text file "
        "with one entry per line, or CSV, TSV or Parquet with --balance-entry-column, on any "
        "filesystem Beam knows; builtin:cc3m for the shipped list; empty: no balancing",
    )
    balance_entry_column: str = opt("entry", "column of the entries in a CSV, TSV or Parquet list")
    balance_cap: int = opt(
        20_000,
        "pairs each entry keeps at most (MetaCLIP's 20000); an entry matched by more keeps a "
        "random sample of this many, drawn by a hash of the uid; a pair survives if any of its "
        "entries keeps it",
    )
    balance_unmatched: str = opt(
        "drop",
        "pairs whose caption matches no entry: drop (reason balance_unmatched; MetaCLIP's "
        "curation keeps only matched pairs) or keep",
        choices=BALANCE_UNMATCHED,
    )

    def __post_init__(self) -> None:
        _require(self.balance_cap >= 1, "--balance-cap must be at least 1")
        _require(
            self.balance_unmatched in BALANCE_UNMATCHED,
            f"--balance-unmatched: pick one of {BALANCE_UNMATCHED}",
        )
        _require(bool(self.balance_entry_column), "--balance-entry-column must not be empty")

    @property
    def enabled(self) -> bool:
        return bool(self.balance_entries)


CLIP_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ClipConfig:
    """Which CLIP model scores the pairs, and which scores are kept."""

    clip_model: str = opt(
        "ViT-B-32",
        "open_clip model name (ViT-B-32, ...), an hf-hub:ORG/NAME id, paircurate-ref (the "
        "project's small reference scorer, what the demo and tests use) or none (no scoring)",
    )
    clip_pretrained: str = opt(
        "laion2b_s34b_b79k", "open_clip pretrained tag, read from open_clip's cache"
    )
    clip_checkpoint: str = opt(
        "",
        "an open_clip checkpoint file for --clip-model, instead of --clip-pretrained: a local "
        "path or any filesystem Beam knows (gs://, s3://); each worker machine copies it once "
        "into its cache",
    )
    clip_device: str = opt(
        "auto",
        "where the model runs: auto (cuda when present, logged), cpu or cuda (fails without one)",
        choices=CLIP_DEVICES,
    )
    clip_accelerator: str = opt(
        "",
        "a Beam accelerator resource hint for the Score step only, e.g. "
        "'type:nvidia-l4;count:1;install-nvidia-driver': on Dataflow, GPU workers for scoring "
        "while downloads stay on CPU workers",
    )
    clip_batch_size: int = opt(64, "pairs embedded per batch")
    clip_threshold: float | None = opt(
        None, "drop pairs whose image-caption cosine similarity is below this"
    )
    clip_threshold_by_lang: tuple[str, ...] = opt(
        (),
        "thresholds per caption language, e.g. en=0.28,default=0.26 (LAION-5B's); "
        "default applies to every other language",
    )
    clip_keep_fraction: float | None = opt(
        None, "keep only this top fraction of pairs by score (DataComp's best: 0.3)"
    )
    write_embeddings: bool = opt(
        False, "write image and text embeddings per shard (float16, in shard Parquet order)"
    )

    def __post_init__(self) -> None:
        _require(bool(self.clip_model), "--clip-model: name a model, or none to turn scoring off")
        _require(self.clip_device in CLIP_DEVICES, f"--clip-device: pick one of {CLIP_DEVICES}")
        _require(self.clip_batch_size >= 1, "--clip-batch-size must be at least 1")
        if self.clip_accelerator:
            _require(
                "type:" in self.clip_accelerator,
                f"--clip-accelerator {self.clip_accelerator!r}: name the GPU, e.g. "
                "'type:nvidia-l4;count:1;install-nvidia-driver'",
            )
            _require(
                self.clip_device != "cpu",
                "--clip-accelerator asks for GPUs that --clip-device cpu would not use: "
                "use --clip-device auto or cuda",
            )
        if self.clip_threshold is not None:
            _require(-1 <= self.clip_threshold <= 1, "--clip-threshold must be in -1..1")
        if self.clip_keep_fraction is not None:
            _require(0 < self.clip_keep_fraction <= 1, "--clip-keep-fraction must be in (0, 1]")
        # Parsed (and so validated) once, not for every row judged.
        object.__setattr__(self, "_by_language", self._parse_by_language())

    @property
    def scores(self) -> bool:
        return self.clip_model.lower() != "none"

    @property
    def thresholds_by_language(self) -> Mapping[str, float]:
        """--clip-threshold-by-lang as {language: threshold}; "default" for the others."""
        return self._by_language

    def _parse_by_language(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for item in self.clip_threshold_by_lang:
            language, sep, value = item.partition("=")
            try:
                threshold = float(value)
            except ValueError:
                threshold = math.nan
            _require(
                bool(sep) and bool(language) and -1 <= threshold <= 1,
                f"--clip-threshold-by-lang: {item!r} is not LANG=THRESHOLD (e.g. en=0.28)",
            )
            found[language.strip().lower()] = threshold
        return found


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the outputs are written."""

    output: str = opt("", "output folder: local path or a gs:// / s3:// style URL")
    shard_size: int = opt(10_000, "target samples per shard (rows fetched per chunk)")
    text_only: bool = opt(
        False,
        "run only the metadata stages (read, captions, URL dedup, caption clusters): write the "
        "ledger and the surviving rows to DIR/metadata/, download nothing",
    )
    retry_failed: bool = opt(
        False,
        "in chunks an earlier run with the same fetch options committed, download again only "
        "the rows that failed for a reason that may pass (timeouts, 5xx, 429, connection "
        "errors) and merge them into the outputs; what `paircurate retry-failed` sets",
    )
    allow_local_paths: bool = opt(
        False,
        "accept local --input/--output paths with a runner whose workers may not share this "
        "machine's disk (Dataflow; Flink, Spark or a job server with DOCKER workers, or with a "
        "remote engine): for a network mount at the same path on every worker",
    )
    runs_table: str = opt(
        "",
        "a folder (local, gs://, s3://) that every run adds one Parquet file of its metrics to, "
        "read as one table of all runs by dashboards (docs/report.md); empty: none",
    )

    def __post_init__(self) -> None:
        _require(bool(self.output), "--output: name the folder the outputs go to")
        _require(self.shard_size >= 1, "--shard-size must be at least 1")


@dataclass(frozen=True)
class ComplianceConfig:
    """What the dataset must leave out: removal lists and evaluation sets (docs/compliance.md)."""

    exclude: tuple[str, ...] = opt(
        (),
        "a removal list, [KIND[/DISTANCE]:]FILE with KIND url, domain (and its subdomains), "
        "sha256, md5 or sha1 (of the downloaded bytes), phash (within DISTANCE bits) or pdq "
        "(256-bit PDQ, within DISTANCE bits, 31 if not given), or a file that names the kind per "
        "line (kind,value[,distance]) or in its header; CSV, text or Parquet, on any filesystem "
        "Beam knows; repeatable; matches are dropped as excluded (`paircurate remove` applies "
        "lists to a finished run)",
    )
    decontaminate: tuple[str, ...] = opt(
        (),
        "an evaluation set to keep out of the pool: a folder of images, WebDataset tars, or a "
        "paircurate run folder or Parquet with a phash column; pool images near one are dropped "
        "as eval_contamination; repeatable",
    )
    decontam_phash_distance: int = opt(
        6,
        "a pool image whose pHash differs from an evaluation image's in at most this many bits "
        "is contaminated (re-encodes and resizes stay within 4 bits, 1 percent crops within 6)",
    )

    decontam_cosine: float | None = opt(
        None,
        "also drop pool images whose CLIP image embedding has at least this cosine similarity "
        "with an evaluation image's, embedded by the same model (needs CLIP scoring); catches "
        "copies pHash misses, such as larger crops",
    )

    def __post_init__(self) -> None:
        _require(
            0 <= self.decontam_phash_distance < 64, "--decontam-phash-distance must be in 0..63"
        )
        if self.decontam_cosine is not None:
            _require(-1 <= self.decontam_cosine <= 1, "--decontam-cosine must be in -1..1")


INPUT_FORMATS = ("auto", "lists", "wat", "warc")
DEFAULT_LAZY_SRC = (
    "data-src", "data-lazy-src", "data-original", "data-lazy", "data-echo", "data-url",
)  # fmt: skip
DEFAULT_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
DEFAULT_SPACER_NAMES = (
    "spacer", "blank", "pixel", "1x1", "transparent", "clear", "clearpixel", "trans", "dot",
    "empty", "shim", "pix", "tracking", "tracker", "beacon", "__utm", "tr", "placeholder",
    "lazy", "lazyload", "loader", "loading",
)  # fmt: skip


@dataclass(frozen=True)
class ExtractConfig:
    """Pairs from a crawl: which WAT or WARC files, and which <img> candidates are usable
    (docs/extract.md)."""

    input_format: str = opt(
        "auto",
        "what --input holds: lists (URL + caption files), wat or warc (crawl files, or a paths "
        "list such as Common Crawl's wat.paths.gz); auto: wat or warc where every input's name "
        "says so (.warc.wat.gz, .warc.gz, wat.paths.gz, warc.paths.gz), else lists",
        choices=INPUT_FORMATS,
    )
    crawl_prefix: str = opt(
        "",
        "prepended to each relative entry of a paths list, e.g. s3://commoncrawl/ or "
        "gs://my-mirror/",
    )
    crawl_max_files: int = opt(0, "read only the first this many crawl files (0: all)")
    max_record_bytes: int = opt(
        8_388_608,
        "bytes of one record kept for parsing; a longer HTML page is parsed up to here "
        "(counted as page_cut), a longer WAT record fails as extract_record_too_large",
    )
    lazy_src_attributes: tuple[str, ...] = opt(
        DEFAULT_LAZY_SRC,
        "<img> attributes a lazy-loading script copies into src, first non-empty wins over src",
    )
    lazy_srcset_attributes: tuple[str, ...] = opt(
        DEFAULT_LAZY_SRCSET,
        "attributes a lazy-loading script copies into srcset, first non-empty wins over srcset",
    )
    viewport_width: int = opt(
        1280, "CSS pixels of the browser window that srcset, sizes and <picture> media pick for"
    )
    pixel_ratio: float = opt(
        1.0, "device pixels per CSS pixel of that browser: srcset picks the candidate for it"
    )
    spacer_max_size: int = opt(
        1,
        "an <img> whose declared width or height is at most this many pixels is a spacer or "
        "tracking pixel (extract_spacer; 0: no size rule)",
    )
    spacer_names: tuple[str, ...] = opt(
        DEFAULT_SPACER_NAMES,
        "file names (without extension, any case) of spacer, placeholder and tracking images: "
        "a name made only of these words and numbers (spacer.gif, 1x1_blank.png, /tr?id=) "
        "is dropped as extract_spacer_name; 'none' for no name rule",
    )
    drop_page_repeats: bool = opt(
        True, "drop an <img> whose (url, alt) already appeared on the same page"
    )

    def __post_init__(self) -> None:
        _require(self.input_format in INPUT_FORMATS, f"--input-format: pick one of {INPUT_FORMATS}")
        _require(self.crawl_max_files >= 0, "--crawl-max-files must be 0 or more")
        _require(self.max_record_bytes >= 4096, "--max-record-bytes must be at least 4096")
        _require(self.viewport_width >= 1, "--viewport-width must be at least 1")
        _require(0 < self.pixel_ratio <= 16, "--pixel-ratio must be above 0 and at most 16")
        _require(self.spacer_max_size >= 0, "--spacer-max-size must be 0 or more")
        for name in (*self.lazy_src_attributes, *self.lazy_srcset_attributes):
            _require(
                bool(name) and name == name.strip().lower() and " " not in name,
                f"--lazy-src-attributes / --lazy-srcset-attributes: {name!r} is not an "
                "attribute name (lowercase, no spaces)",
            )

    @property
    def spacer_words(self) -> frozenset[str]:
        """The spacer names to match, with the CLI's 'none' meaning no name rule."""
        return frozenset(name.lower() for name in self.spacer_names) - {"none"}


@dataclass(frozen=True)
class CardConfig:
    """What the dataset card (croissant.json, DATASET_CARD.md) says that the run cannot know."""

    dataset_name: str = opt("", "the dataset's name on its card (default: the output folder)")
    dataset_description: str = opt(
        "", "a description for the card, ahead of what the run measured (default: a generated one)"
    )
    dataset_license: str = opt(
        "",
        "the licence the dataset itself is published under, an SPDX id or a URL (the images keep "
        "their owners' rights, which the card says)",
    )
    dataset_url: str = opt("", "where the dataset is published, for the card")
    dataset_creator: str = opt("", "who publishes the dataset (a person or an organisation)")
    source_license: tuple[str, ...] = opt(
        (),
        "INPUT=LICENSE: the licence of an input source as its publisher gives it, for the card; "
        "INPUT is an --input value as given; repeatable",
    )

    def __post_init__(self) -> None:
        for item in self.source_license:
            source, sep, licence = item.partition("=")
            _require(
                bool(sep and source.strip() and licence.strip()),
                f"--source-license: {item!r} is not INPUT=LICENSE (e.g. urls.parquet=CC-BY-4.0)",
            )

    def source_licenses(self) -> dict[str, str]:
        """--input value -> the licence given for it."""
        pairs = (item.partition("=") for item in self.source_license)
        return {source.strip(): licence.strip() for source, _, licence in pairs}


@dataclass(frozen=True)
class JobConfig:
    """Everything one run needs, grouped by concern."""

    inputs: InputConfig
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(output="out"))
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    card: CardConfig = field(default_factory=CardConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)

    def __post_init__(self) -> None:
        if self.compliance.decontam_cosine is not None:
            _require(
                self.clip.scores and not self.output.text_only,
                "--decontam-cosine compares CLIP image embeddings: score with --clip-model",
            )


SECTIONS: dict[str, type] = {
    "inputs": InputConfig,
    "caption": CaptionConfig,
    "download": DownloadConfig,
    "image": ImageConfig,
    "dedup": DedupConfig,
    "balance": BalanceConfig,
    "clip": ClipConfig,
    "output": OutputConfig,
    "compliance": ComplianceConfig,
    "card": CardConfig,
    "extract": ExtractConfig,
}


def _from_json(value: Any, hint: Any) -> Any:
    """One option back from JSON: lists were tuples, null in a plain float was infinity."""
    if isinstance(value, list):
        return tuple(value)
    if value is None and hint is float:
        return math.inf
    return value


def section_from_options(cls: type, stored: dict[str, Any]) -> Any:
    """One section of options as stats.json stores it (``asdict``, as JSON) back as ``cls``.

    Options the stored run did not know take their defaults, and options this
    version no longer knows are left out, so outputs of older versions still
    read. Raises ConfigError where a stored value is not valid.
    """
    hints = typing.get_type_hints(cls)
    values = {
        option.name: _from_json(stored[option.name], hints[option.name])
        for option in fields(cls)
        if option.name in stored
    }
    return cls(**values)


def config_from_options(options: dict[str, dict[str, Any]]) -> JobConfig:
    """The JobConfig a stats.json's ``options`` were written from (see ``section_from_options``)."""
    sections = {
        name: section_from_options(cls, options.get(name) or {}) for name, cls in SECTIONS.items()
    }
    return JobConfig(**sections)
