"""The hostile-server cases: one table, grouped by attack class, each with its expected reason.

A case is served by hostile_server.py at ``/case/<name>`` on the shared
server (or reached at a URL of its own) and fetched through ``fetch_many``
with short timeouts; it must end with its reason within ``bound_s`` seconds
of wall clock. Cases about site files (robots.txt, tdmrep.json) get a server
of their own, since those files belong to an origin. The address-guard cases
aim at a second server, the guarded one, that no downloader trusts: it
answers every request with an image, so a guard that let one through would
show as a case that succeeds, and in that server's requests.

The table is built once the shared and guarded servers listen, since some
cases name their ports.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

from ..helpers import image_bytes
from . import bombs
from .hostile_server import Route, drip, forever, pause, reset, response, route, send

PNG = image_bytes(64, 48)
OK = response(PNG, headers=("Content-Type: image/png",))
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
# Every case runs with these timeouts: a stall ends after DEADLINE_S, and a
# case must end within BOUND_S, generous for a loaded machine. Drips and
# pauses stay well under the read timeout, so that only the deadline ends them.
READ_TIMEOUT_S, DEADLINE_S, BOUND_S = 1.0, 2.0, 10.0


@dataclass(frozen=True)
class Case:
    name: str
    attack: str  # the class in the closing table
    expected: str | None  # the ledger reason; None: the image comes back whole
    served: Route | None = None  # at /case/<name> on the shared server
    url: str = ""  # instead of /case/<name>: a whole URL, or a path on the case's own site
    site: dict[str, Route] = field(default_factory=dict)  # a server of its own
    config: dict[str, object] = field(default_factory=dict)
    bound_s: float = BOUND_S


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _encoded(body: bytes, encoding: str, length: bool = True) -> bytes:
    headers = ("Content-Type: image/png", f"Content-Encoding: {encoding}")
    return response(body, headers=headers, length=length)


def _stalls(shared_port: int) -> list[Case]:
    """Every phase of a request dripped or stalled: each must end at the deadline."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PNG)
    cases = {
        "silent-after-accept": route(pause(5)),
        "status-line-dripped": route(drip(OK)),
        "header-line-every-0.2s": route(
            send(b"HTTP/1.1 200 OK\r\n"), forever(b"X-Slow: 1\r\n", every=0.2)
        ),
        "headers-dripped": route(send(b"HTTP/1.1 200 OK\r\n"), drip(b"X-A: 1\r\n" * 20)),
        "stall-after-headers": route(send(head), pause(5)),
        "body-trickles": route(send(head), drip(PNG, every=0.05)),
        "body-stalls-midway": route(send(head + PNG[:20]), pause(5)),
        "chunk-size-line-dripped": route(send(CHUNKED_HEAD), drip(b"1;" + b"e" * 60 + b"\r\n")),
        "chunk-data-dripped": route(send(CHUNKED_HEAD + b"%x\r\n" % len(PNG)), drip(PNG)),
        "trailers-forever": route(
            send(CHUNKED_HEAD + _chunk(PNG) + b"0\r\n"), forever(b"X-T: 1\r\n", every=0.15)
        ),
        "100-continue-every-0.5s": route(forever(b"HTTP/1.1 100 Continue\r\n\r\n", every=0.5)),
        "103-hints-dripped": route(drip(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" * 3)),
        "redirect-hops-each-slow": route(
            pause(0.5),
            send(response(b"", "302 Found", ("Location: /case/redirect-hops-each-slow",))),
        ),
    }
    stalls = [Case(name, "stall", "download_timeout", served) for name, served in cases.items()]
    stalls.append(
        Case(
            "tls-handshake-stalls",
            "stall",
            "download_timeout",
            route(pause(5)),
            url=f"https://127.0.0.1:{shared_port}/case/tls-handshake-stalls",
        )
    )
    return stalls


def _site_files() -> list[Case]:
    """robots.txt and tdmrep.json served slowly or with patterns built to backtrack."""
    adversarial = "/" + "a*" * 30 + "b"
    long_path = "/" + "a" * 20_000  # the patterns start "/a": every star has work to do
    robots = {"respect_robots_txt": True}
    usage = {"respect_ai_preferences": True}
    tdm = {"respect_tdmrep": True}
    dripped = route(drip(response(b"User-agent: *\nDisallow: /x\n")))

    def text(body: str, kind: str = "text/plain") -> Route:
        return route(send(response(body.encode(), headers=(f"Content-Type: {kind}",))))

    def case(
        name: str,
        expected: str | None,
        files: dict[str, Route],
        config: dict,
        path: str = "/case/img",
    ) -> Case:
        site = {**files, path: route(send(OK))}
        return Case(name, "site files", expected, site=site, config=config, url=path)

    rule = f"User-agent: *\nContent-Usage: {adversarial} train-ai=n\nDisallow: {adversarial}\n"
    tdm_rule = f'[{{"location": "{adversarial}", "tdm-reservation": 1}}]'
    return [
        case("robots-txt-dripped", "download_robots_unavailable", {"/robots.txt": dripped}, robots),
        case("robots-txt-for-ai-preferences-dripped", None, {"/robots.txt": dripped}, usage),
        case(
            "robots-txt-100-continue-forever",
            "download_robots_unavailable",
            {"/robots.txt": route(forever(b"HTTP/1.1 100 Continue\r\n\r\n", every=0.3))},
            robots,
        ),
        case(
            "tdmrep-json-dripped",
            "download_timeout",
            {"/.well-known/tdmrep.json": route(drip(response(b"[]")))},
            tdm,
        ),
        case("adversarial-content-usage", None, {"/robots.txt": text(rule)}, usage, long_path),
        case("adversarial-disallow", None, {"/robots.txt": text(rule)}, robots, long_path),
        case(
            "adversarial-tdmrep-location",
            None,
            {"/.well-known/tdmrep.json": text(tdm_rule, "application/json")},
            tdm,
            long_path,
        ),
        case(
            "adversarial-content-usage-that-matches",
            "download_ai_optout",
            {"/robots.txt": text(rule)},
            usage,
            "/" + "a" * 5_000 + "b",
        ),
    ]


def _limits() -> list[Case]:
    """Whatever a server can repeat, repeated past its bound."""
    many = b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"Content-Length: 2\r\n\r\nok"
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok"
    lines = b"HTTP/1.1 200 OK\r\n" + (b"X-A: " + b"a" * 1000 + b"\r\n") * 90 + b"\r\n"
    trailers = CHUNKED_HEAD + _chunk(PNG) + b"0\r\n" + b"X-T: 1\r\n" * 200 + b"\r\n"
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" * 50 + OK
    big_hint = b"HTTP/1.1 103 Early Hints\r\nLink: <" + b"a" * 70_000 + b">\r\n\r\n" + OK
    long_chunk_line = CHUNKED_HEAD + b"10;" + b"x" * 5000 + b"\r\n"
    cases = {
        "101-header-lines": many,
        "a-70-kb-header-line": big,
        "90-kb-of-header-lines": lines,
        "200-trailer-lines": trailers,
        "50-early-hints": hints,
        "a-70-kb-early-hint": big_hint,
        "5-kb-chunk-size-line": long_chunk_line,
    }
    found = [
        Case(name, "limits", "download_header_limit", route(send(data)))
        for name, data in cases.items()
    ]
    loop = route(send(response(b"", "302 Found", ("Location: /case/redirect-loop",))))
    found.append(Case("redirect-loop", "limits", "download_too_many_redirects", loop))
    flood = route(forever(b"HTTP/1.1 100 Continue\r\n\r\n"))
    found.append(Case("100-continue-flood", "limits", "download_header_limit", flood))
    return found


def _framing() -> list[Case]:
    """Ambiguous or broken message framing: refused, never guessed."""
    cl = len(PNG)
    cases: dict[str, tuple[bytes, str | None]] = {
        "conflicting-content-lengths": (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n" % (cl, cl - 9)
            + PNG,
            "download_error",
        ),
        "content-length-list-disagrees": (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d, 10\r\n\r\n" % cl + PNG,
            "download_error",
        ),
        "content-length-beside-chunked": (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            + _chunk(PNG)
            + b"0\r\n\r\n",
            None,
        ),
        "103-early-hints-first": (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, None),
        "102-processing-first": (b"HTTP/1.1 102 Processing\r\n\r\n" + OK, None),
        "100-continue-first": (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, None),
        "three-interim-kinds": (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\n\r\n" + OK,
            None,
        ),
        "101-unasked": (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
            "download_error",
        ),
        "transfer-encoding-gzip-chunked": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "download_unsupported_encoding",
        ),
        "chunked-twice": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "download_error",
        ),
        "bad-chunk-size": (CHUNKED_HEAD + b"zz\r\n", "download_error"),
        "chunk-longer-than-its-size": (CHUNKED_HEAD + b"2\r\nabc\r\n0\r\n\r\n", "download_error"),
        "body-longer-than-content-length": (OK + b"HTTP/1.1 200 OK\r\n\r\nsmuggled", None),
        "no-status-line": (PNG, "download_error"),
        "status-code-of-4-digits": (
            b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            "download_error",
        ),
        "http-2-status-line": (b"HTTP/2 200\r\n\r\n", "download_error"),
        "header-without-colon": (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "download_error"),
        "space-before-colon": (
            b"HTTP/1.1 200 OK\r\nContent-Length : %d\r\n\r\n" % cl + PNG,
            "download_error",
        ),
        "nul-in-a-header": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", "download_error"),
        "bare-lf-lines": (b"HTTP/1.1 200 OK\nContent-Length: %d\n\n" % cl + PNG, None),
        "folded-header": (
            b"HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: %d\r\n\r\n" % cl + PNG,
            None,
        ),
        "no-content-204": (b"HTTP/1.1 204 No Content\r\n\r\n", "download_empty"),
        "http-1.0-close-delimited": (b"HTTP/1.0 200 OK\r\n\r\n" + PNG, None),
        "folded-transfer-encoding": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
            + _chunk(PNG)
            + b"0\r\n\r\n",
            None,
        ),
        "transfer-encoding-xchunked": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n" + _chunk(PNG),
            "download_unsupported_encoding",
        ),
        "status-line-double-space": (b"HTTP/1.1  200 OK\r\n\r\n" + PNG, "download_error"),
        "status-line-without-reason": (
            b"HTTP/1.1 200\r\nContent-Length: %d\r\n\r\n" % cl + PNG,
            None,
        ),
        "content-length-padded": (
            b"HTTP/1.1 200 OK\r\nContent-Length:  %d \t\r\n\r\n" % cl + PNG,
            None,
        ),
    }
    return [
        Case(name, "framing", expected, route(send(data)))
        for name, (data, expected) in cases.items()
    ]


def _numbers() -> list[Case]:
    """Numbers that str.isdigit() or int() would take and HTTP does not."""
    lengths = {
        "superscript-two": "²",
        "arabic-indic-digits": "٣٠",
        "underscore": "1_0",
        "plus-sign": "+10",
        "negative": "-1",
        "hex": "0x10",
        "5000-digits": "9" * 5000,
        "exponent": "1e3",
    }
    cases = [
        Case(
            f"content-length-{name}",
            "numbers",
            "download_error",
            route(send(f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n".encode() + PNG)),
        )
        for name, value in lengths.items()
    ]
    retry = {"retries": 1, "retry_backoff": 0.01}
    for name, value, status, expected in [
        ("superscript-two", "²", "429 Too Many", "download_http_429"),
        ("5000-digits", "9" * 5000, "503 Unavailable", "download_http_5xx"),
        ("not-a-date", "Mon, 99 Foo 2025 99:99:99 GMT", "503 Unavailable", "download_http_5xx"),
    ]:
        served = route(send(response(b"later", status, (f"Retry-After: {value}",))))
        cases.append(Case(f"retry-after-{name}", "numbers", expected, served, config=retry))
    status = "HTTP/1.1 ٢٠٠ OK\r\nContent-Length: 2\r\n\r\nok".encode()
    cases.append(Case("status-in-arabic-digits", "numbers", "download_error", route(send(status))))
    chunk = CHUNKED_HEAD + "٣\r\nabc\r\n0\r\n\r\n".encode()
    cases.append(Case("chunk-size-arabic-digit", "numbers", "download_error", route(send(chunk))))
    over_cap = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n" + PNG
    cases.append(
        Case("content-length-over-the-cap", "numbers", "download_too_large", route(send(over_cap)))
    )
    return cases


def _lost() -> list[Case]:
    """The connection ends early: before the head is whole a connection error, after it
    an incomplete body (both retried later)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PNG)
    error, incomplete = "download_connection_error", "download_incomplete"
    cases: dict[str, tuple[Route, str]] = {
        "closed-at-once": (route(), error),
        "reset-at-once": (route(reset()), error),
        "closed-mid-status-line": (route(send(b"HTTP/1.1 20")), error),
        "closed-after-status-line": (route(send(b"HTTP/1.1 200 OK\r\n")), error),
        "closed-mid-headers": (route(send(b"HTTP/1.1 200 OK\r\nContent-Type: ima")), error),
        "closed-before-empty-line": (route(send(head[:-2])), error),
        "closed-mid-body": (route(send(head + PNG[:30])), incomplete),
        "closed-mid-chunk": (
            route(send(CHUNKED_HEAD + b"%x\r\n" % len(PNG) + PNG[:30])),
            incomplete,
        ),
        "closed-before-last-chunk": (route(send(CHUNKED_HEAD + _chunk(PNG))), incomplete),
        "closed-in-trailers": (
            route(send(CHUNKED_HEAD + _chunk(PNG) + b"0\r\nX-T: 1\r\n")),
            incomplete,
        ),
        "reset-mid-body": (route(send(head + PNG[:30]), pause(0.1), reset()), error),
    }
    return [
        Case(name, "lost connection", reason, served) for name, (served, reason) in cases.items()
    ]


def _encodings() -> list[Case]:
    """Content codings: decoded under the byte cap, or refused by name."""
    gzip_png = bombs.gzipped(PNG)
    deflate = zlib.compress(PNG)
    raw = zlib.compressobj(wbits=-15)
    raw_deflate = raw.compress(PNG) + raw.flush()
    bomb = bombs.gzipped(b"\0" * 10_000_000)
    cases: dict[str, tuple[bytes, str | None]] = {
        "gzip": (_encoded(gzip_png, "gzip"), None),
        "x-gzip": (_encoded(gzip_png, "x-gzip"), None),
        "gzip-gzip": (_encoded(bombs.gzipped(PNG, 2), "gzip, gzip"), None),
        "gzip-then-identity": (_encoded(gzip_png, "gzip, identity"), None),
        "deflate": (_encoded(deflate, "deflate"), None),
        "raw-deflate": (_encoded(raw_deflate, "deflate"), None),
        "brotli": (_encoded(PNG, "br"), "download_unsupported_encoding"),
        "zstd": (_encoded(PNG, "zstd"), "download_unsupported_encoding"),
        "gzip-then-brotli": (_encoded(gzip_png, "gzip, br"), "download_unsupported_encoding"),
        "four-gzips": (
            _encoded(bombs.gzipped(PNG, 4), "gzip, gzip, gzip, gzip"),
            "download_unsupported_encoding",
        ),
        "gzip-cut-short-close-delimited": (
            _encoded(gzip_png[: len(gzip_png) // 2], "gzip", length=False),
            "download_incomplete",
        ),
        "gzip-cut-short-with-its-length": (
            _encoded(gzip_png[: len(gzip_png) // 2], "gzip"),
            "download_incomplete",
        ),
        "gzip-corrupt": (_encoded(b"\x1f\x8b" + b"garbage" * 10, "gzip"), "download_error"),
        "gzip-bomb": (_encoded(bomb, "gzip"), "download_too_large"),
        "gzip-gzip-bomb": (_encoded(bombs.gzipped(bomb), "gzip, gzip"), "download_too_large"),
    }
    return [
        Case(name, "encodings", expected, route(send(data)))
        for name, (data, expected) in cases.items()
    ]


def _guard(port: int) -> list[Case]:
    """The guarded server in other spellings, and metadata addresses: never connected to."""
    blocked = "download_blocked_address"
    hosts = {
        "ipv4-compatible": "[::127.0.0.1]",
        "ipv4-mapped": "[::ffff:127.0.0.1]",
        "siit": "[::ffff:0:127.0.0.1]",
        "nat64": "[64:ff9b::7f00:1]",
        "nat64-local": "[64:ff9b:1::7f00:1]",
        "6to4": "[2002:7f00:1::1]",
        "teredo": "[2001:0:4136:e378:0:0:80ff:fffe]",
        "ipv6-loopback": "[::1]",
        "decimal": "2130706433",
        "octal": "0177.0.0.1",
        "hex": "0x7f.0.0.1",
        "short-form": "127.1",
        "zero": "0",
        "all-zeros": "0.0.0.0",
        "localhost": "localhost",
        "localhost-trailing-dot": "localhost.",
        "userinfo": "images.example.com@127.0.0.1",
        "fullwidth-digits": "１２７.０.０.１",
        "enclosed-alphanumerics": "①②⑦.⓪.⓪.①",
        "leading-zero-octets": "127.000.000.001",
        "one-hex-number": "0x7f000001",
        "metadata": "169.254.169.254",
        "metadata-nat64": "[64:ff9b::a9fe:a9fe]",
        "alibaba-metadata": "100.100.100.200",
        "oracle-metadata": "192.0.0.192",
        "aws-metadata-ipv6": "[fd00:ec2::254]",
    }
    cases = [
        Case(f"host-{name}", "address guard", blocked, url=f"http://{host}:{port}/host-{name}")
        for name, host in hosts.items()
    ]
    for name, host in [
        ("ipv4-compatible", "[::127.0.0.1]"),
        ("nat64", "[64:ff9b::7f00:1]"),
        ("metadata", "169.254.169.254"),
        ("decimal", "2130706433"),
    ]:
        target = f"http://{host}:{port}/redirected-{name}"
        cases.append(
            Case(
                f"redirect-to-{name}",
                "address guard",
                blocked,
                route(send(response(b"", "302 Found", (f"Location: {target}",)))),
            )
        )
    return cases


def _images() -> list[Case]:
    """Declared sizes over --max-pixels and under Pillow's own limit: refused undecoded."""
    bodies = {
        "png-exif-after-pixels": bombs.png_bomb(13300, 13300, exif="after"),
        "png-exif-before-pixels": bombs.png_bomb(13300, 13300, exif="before"),
        "jpeg-12000-square": bombs.jpeg_bomb(12000, 12000),
        "webp-animated-12000-canvas": bombs.webp_bomb(12000, 12000),
        "gif-12000-screen": bombs.gif_bomb(12000, 12000),
    }
    return [
        Case(name, "image bombs", "image_too_many_pixels", route(send(response(body))))
        for name, body in bodies.items()
    ]


def all_cases(shared_port: int = 0, guarded_port: int = 0) -> list[Case]:
    cases = [
        *_stalls(shared_port),
        *_site_files(),
        *_limits(),
        *_framing(),
        *_numbers(),
        *_lost(),
        *_encodings(),
        *_guard(guarded_port),
        *_images(),
    ]
    names = [case.name for case in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases


def class_table(cases: list[Case]) -> str:
    """The attack classes and their case counts, as a Markdown table."""
    counts = Counter(case.attack for case in cases)
    rows = [f"| {attack} | {count} |" for attack, count in counts.items()]
    return "\n".join(["| attack class | cases |", "|---|---|", *rows, f"| all | {len(cases)} |"])
