"""Status and reason codes of the ledger: the one list dashboards and tests rely on.

Every input row ends in the ledger with one ``status`` and, unless it was kept,
one ``reason``. A reason belongs to exactly one status, so a dashboard can group
by either column and the two always agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(str, enum.Enum):
    """Final outcome of one input row."""

    KEPT = "kept"
    DROPPED = "dropped"  # a rule decided against the pair
    FAILED = "failed"  # the pair could not be obtained or decoded


@dataclass(frozen=True)
class Reason:
    """One machine-readable reason code, with what a user needs to know about it."""

    code: str
    status: Status
    stage: str
    description: str
    retryable: bool = False


def _reasons(*items: Reason) -> dict[str, Reason]:
    return {item.code: item for item in items}


_F, _D = Status.FAILED, Status.DROPPED

REASONS: dict[str, Reason] = _reasons(
    # input
    Reason("invalid_row", _F, "read", "the input line cannot be parsed (see reason_detail)"),
    Reason("missing_url", _F, "read", "the URL column is null or empty"),
    Reason("invalid_url", _F, "read", "the URL cannot be parsed or has no host"),
    Reason("unsupported_scheme", _F, "read", "the URL is not http or https"),
    # caption stage
    Reason("caption_missing", _D, "caption", "the caption is null or empty after normalisation"),
    Reason("caption_too_short", _D, "caption", "fewer characters than --min-caption-chars"),
    Reason("caption_too_long", _D, "caption", "more characters than --max-caption-chars"),
    Reason("caption_too_few_words", _D, "caption", "fewer words than --min-caption-words"),
    Reason("caption_too_many_words", _D, "caption", "more words than --max-caption-words"),
    Reason("caption_junk", _D, "caption", "a caption that says nothing (--junk-captions)"),
    Reason("caption_filename", _D, "caption", "the caption is a file name such as IMG_1234.jpg"),
    Reason("caption_url", _D, "caption", "the caption is a bare URL"),
    Reason("caption_nonletter", _D, "caption", "more non-letters than --max-nonletter-share"),
    Reason("language", _D, "caption", "the caption's language is not in --languages"),
    # exact deduplication before download
    Reason("url_duplicate", _D, "dedup", "the normalised URL appeared earlier in the input"),
    # duplicate clusters after download
    Reason(
        "near_duplicate",
        _D,
        "dedup",
        "same or near-duplicate image and caption as the kept pair (duplicate_of)",
    ),
    Reason("image_duplicate", _D, "dedup", "the image repeats a kept one (--drop-image-repeats)"),
    Reason(
        "caption_duplicate",
        _D,
        "dedup",
        "the caption near-duplicates a kept one (--drop-caption-repeats)",
    ),
    Reason(
        "caption_cluster_cap",
        _D,
        "dedup",
        "the caption's cluster already keeps --caption-cluster-cap pairs",
    ),
    Reason(
        "semantic_duplicate",
        _D,
        "dedup",
        "the image embedding is within --semantic-threshold of a kept pair's (--semantic-dedup)",
    ),
    # CLIP scoring
    Reason(
        "clip_below_threshold",
        _D,
        "clip",
        "the CLIP score is below a threshold in force (the detail names it and the score)",
    ),
    # download
    Reason("download_http_404", _F, "fetch", "the server answered 404 Not Found"),
    Reason("download_http_410", _F, "fetch", "the server answered 410 Gone"),
    Reason("download_http_4xx", _F, "fetch", "the server answered another 4xx status"),
    Reason("download_http_429", _F, "fetch", "the server answered 429 Too Many Requests", True),
    Reason("download_http_5xx", _F, "fetch", "the server answered a 5xx status", True),
    Reason("download_timeout", _F, "fetch", "connecting or reading took too long", True),
    Reason("download_connection_error", _F, "fetch", "DNS, refused or reset connection", True),
    Reason("download_incomplete", _F, "fetch", "the body ended before its Content-Length", True),
    Reason("download_too_large", _F, "fetch", "the body is larger than the byte cap"),
    Reason("download_empty", _F, "fetch", "the body is empty"),
    Reason("download_too_many_redirects", _F, "fetch", "more redirects than allowed"),
    Reason("download_blocked_address", _F, "fetch", "the host resolves to a private address"),
    Reason("download_dns_error", _F, "fetch", "the host name does not resolve"),
    Reason("download_opted_out", _D, "fetch", "an X-Robots-Tag directive such as noai opts it out"),
    Reason("download_robots_disallowed", _D, "fetch", "robots.txt disallows it for our agent"),
    Reason(
        "download_robots_unavailable",
        _F,
        "fetch",
        "robots.txt could not be read (5xx, 429, no answer): the host counts as closed for now",
        True,
    ),
    Reason("download_error", _F, "fetch", "any other download error (see reason_detail)"),
    # decode
    Reason("image_decode_error", _F, "image", "the bytes are not an image Pillow can read"),
    Reason("image_truncated", _F, "image", "the image data ends early"),
    Reason("image_too_many_pixels", _F, "image", "more pixels than --max-pixels (bomb guard)"),
    # image rules
    Reason("image_too_small", _D, "image", "the shorter side is under --min-image-size"),
    Reason("image_too_few_bytes", _D, "image", "the file is smaller than --min-image-bytes"),
    Reason("image_too_large", _D, "image", "more pixels than --max-image-area"),
    Reason("image_aspect_ratio", _D, "image", "the aspect ratio is above --max-aspect-ratio"),
)


def reason(code: str) -> Reason:
    """Look up a reason code; an unknown code is a programming error."""
    try:
        return REASONS[code]
    except KeyError:
        raise KeyError(f"unknown reason code {code!r}; add it to schemas/codes.py") from None


def status_of(code: str) -> Status:
    return reason(code).status
