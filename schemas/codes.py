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
    # The opt-out protocol or removal list the reason enforces ("robots.txt", "TDMRep", ...),
    # and the option that turns it on: the compliance summary lists every such reason, with
    # its count, under that name, and reports the protocol honoured when the option is set.
    respects: str = ""
    option: str = ""


def _reasons(*items: Reason) -> dict[str, Reason]:
    return {item.code: item for item in items}


_F, _D = Status.FAILED, Status.DROPPED

REASONS: dict[str, Reason] = _reasons(
    # extract: <img> candidates and records of crawl files, in the extract ledger
    # (DIR/extract_ledger/; docs/extract.md)
    Reason(
        "extract_no_src",
        _D,
        "extract",
        "the <img> names no source in src, srcset or a lazy attribute",
    ),
    Reason(
        "extract_data_uri",
        _D,
        "extract",
        "the source is a data: URI (an inline image or a placeholder)",
    ),
    Reason(
        "extract_unsupported_scheme",
        _D,
        "extract",
        "the source is javascript:, about:, blob:, ftp: or another scheme that is not http(s)",
    ),
    Reason(
        "extract_invalid_url", _F, "extract", "the source cannot be resolved to a URL with a host"
    ),
    Reason("extract_no_alt", _D, "extract", "the <img> has no alt text, or only whitespace"),
    Reason(
        "extract_spacer", _D, "extract", "declared width or height at most --spacer-max-size pixels"
    ),
    Reason(
        "extract_spacer_name",
        _D,
        "extract",
        "the file name is a spacer or tracker's (--spacer-names)",
    ),
    Reason(
        "extract_page_repeat", _D, "extract", "the same (url, alt) appeared earlier on the page"
    ),
    Reason(
        "extract_record_truncated",
        _F,
        "extract",
        "the file ends inside the record (a truncated gzip member or block)",
    ),
    Reason(
        "extract_record_corrupt",
        _F,
        "extract",
        "bytes that are not a gzip member or a WARC record; reading goes on at the next record",
    ),
    Reason(
        "extract_record_too_large", _F, "extract", "a WAT record longer than --max-record-bytes"
    ),
    Reason("extract_wat_json", _F, "extract", "the WAT record's JSON does not parse"),
    Reason(
        "extract_record_error",
        _F,
        "extract",
        "any other failure to read one record (see reason_detail)",
    ),
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
    # concept balancing before download
    Reason(
        "balance_cap",
        _D,
        "balance",
        "every entry the caption matches is over --balance-cap and kept other pairs",
    ),
    Reason(
        "balance_unmatched",
        _D,
        "balance",
        "the caption matches no entry of --balance-entries (--balance-unmatched drop)",
    ),
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
    # compliance: removal lists and evaluation sets (docs/compliance.md)
    Reason(
        "excluded",
        _D,
        "compliance",
        "a removal list (--exclude) names its URL, domain or image (compliance_match names the "
        "list and line)",
        respects="removal lists",
        option="exclude",
    ),
    Reason(
        "eval_contamination",
        _D,
        "compliance",
        "the image near-duplicates an evaluation image (--decontaminate; compliance_match: which)",
        respects="evaluation-set decontamination",
        option="decontaminate",
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
    Reason(
        "download_opted_out",
        _D,
        "fetch",
        "an X-Robots-Tag directive such as noai or noml opts it out",
        respects="X-Robots-Tag",
        option="disallowed_header_directives",
    ),
    Reason(
        "download_robots_disallowed",
        _D,
        "fetch",
        "robots.txt disallows it for our agent",
        respects="robots.txt",
        option="respect_robots_txt",
    ),
    Reason(
        "download_robots_unavailable",
        _F,
        "fetch",
        "robots.txt could not be read (5xx, 429, no answer): the host counts as closed for now",
        True,
        respects="robots.txt",
        option="respect_robots_txt",
    ),
    Reason(
        "download_tdm_reserved",
        _D,
        "fetch",
        "TDMRep reserves text and data mining rights (tdm-reservation header or "
        "/.well-known/tdmrep.json; the detail names the source and the tdm-policy)",
        respects="TDMRep",
        option="respect_tdmrep",
    ),
    Reason(
        "download_tdmrep_unavailable",
        _F,
        "fetch",
        "/.well-known/tdmrep.json could not be read (5xx, 429, no answer): the host counts as "
        "closed for now",
        True,
        respects="TDMRep",
        option="respect_tdmrep",
    ),
    Reason(
        "download_ai_optout",
        _D,
        "fetch",
        "an AI-training preference says no: Content-Usage train-ai=n (header or robots.txt) or "
        "Content-Signal ai-train=no (robots.txt); the detail names the source",
        respects="AI preferences",
        option="respect_ai_preferences",
    ),
    Reason(
        "download_header_limit",
        _F,
        "fetch",
        "the response is over a limit on header lines or bytes, trailer lines or interim 1xx "
        "responses (the detail names it)",
    ),
    Reason(
        "download_unsupported_encoding",
        _F,
        "fetch",
        "a Content-Encoding or Transfer-Encoding that is not decoded (the detail names it)",
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


def respected() -> dict[str, list[Reason]]:
    """Opt-out protocol or removal list -> the reasons that enforce it, in REASONS order."""
    found: dict[str, list[Reason]] = {}
    for item in REASONS.values():
        if item.respects:
            found.setdefault(item.respects, []).append(item)
    return found
