"""Our HTTP/1.1 response reader against h11 and http.client, on the same bytes, no sockets.

transforms/crawl/http1.py reads responses for the download path, where h11
(a strict, bring-your-own-I/O HTTP/1.1 library) or the standard library's
``http.client`` could. This measures the part that differs, per response:
the request's bytes made, a response head of the download bench's shape
(a dozen headers, as CDNs send them) parsed, and a body read in 64 KiB blocks
(``--body`` bytes, by Content-Length or in chunks). Each contender gets
the bytes in 64 KiB receives, as a socket gives them:

- ours: ``ConnectionPool.request_bytes``, then http1's ``read_head``,
  ``framing`` and ``Body.read1``;
- anchor: one h11 ``Connection`` for all the responses, as a pooled
  connection is: ``send(Request)``, ``receive_data`` and ``next_event`` to
  ``EndOfMessage``, then ``start_next_cycle``;
- ``http_client``: ``HTTPResponse.begin()`` and ``read1`` on a file of the
  bytes (its request-building lives in ``HTTPConnection`` and is left out).

Each is timed by ``time.process_time`` over ``--responses`` responses, the
contenders alternating within each of ``--rounds`` rounds, medians kept.

    python bench/http_parsers.py --responses 20000 --rounds 5

Last line: one JSON object (bench convention); ``ratio`` = h11's time per
response / ours.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from http.client import HTTPResponse

import h11

from paircurate.transforms.crawl.connections import ConnectionPool, Origin
from paircurate.transforms.crawl.http1 import Body, Reader, framing, read_head

BLOCK = 1 << 16
HEADERS = {"User-Agent": "paircurate-bench", "Accept": "image/*", "Accept-Encoding": "identity"}
HEAD_FIELDS = [
    ("Date", "Tue, 08 Dec 2026 03:00:00 GMT"), ("Server", "nginx/1.25.3"),
    ("Content-Type", "image/jpeg"), ("Last-Modified", "Mon, 07 Dec 2026 10:00:00 GMT"),
    ("ETag", '"6571a2b0-10a3f"'), ("Cache-Control", "public, max-age=31536000, immutable"),
    ("Accept-Ranges", "bytes"), ("Age", "86400"), ("X-Cache", "HIT"),
    ("Access-Control-Allow-Origin", "*"), ("Via", "1.1 varnish"), ("Connection", "keep-alive"),
]  # fmt: skip


def response_bytes(body_size: int, chunked: bool) -> bytes:
    body = os.urandom(body_size)
    lines = ["HTTP/1.1 200 OK", *(f"{name}: {value}" for name, value in HEAD_FIELDS)]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 8192]), body[i : i + 8192])
            for i in range(0, len(body), 8192)
        )
        payload += b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _receives(data: bytes) -> Callable[[int], bytes]:
    position = 0

    def receive(size: int) -> bytes:
        nonlocal position
        block = data[position : position + min(size, BLOCK)]
        position += len(block)
        return block

    return receive


def ours(data: bytes) -> int:
    pool = ConnectionPool(lambda host, port: (host,), 1, 1, HEADERS)
    origin = Origin("http", "images.example", 80)

    def one() -> int:
        pool.request_bytes(origin, "/img/1.jpg")
        reader = Reader(_receives(data))
        head = read_head(reader)
        body = Body(reader, framing(head))
        size = 0
        while block := body.read1(BLOCK):
            size += len(block)
        return size

    return one


def anchor(data: bytes) -> int:
    headers = [("Host", "images.example"), *HEADERS.items()]
    connection = h11.Connection(h11.CLIENT)  # kept alive, as a pooled connection is

    def one() -> int:
        connection.send(h11.Request(method="GET", target="/img/1.jpg", headers=headers))
        connection.send(h11.EndOfMessage())
        receive = _receives(data)
        size = 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(receive(BLOCK))
            elif isinstance(event, h11.Data):
                size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                connection.start_next_cycle()
                return size

    return one


class _File:
    """What HTTPResponse asks of a socket: a file of the bytes."""

    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data), BLOCK)


def http_client(data: bytes) -> int:
    def one() -> int:
        response = HTTPResponse(_File(data), method="GET")
        response.begin()
        size = 0
        while block := response.read1(BLOCK):
            size += len(block)
        return size

    return one


CONTENDERS = {"ours": ours, "anchor": anchor, "http_client": http_client}


def us_per_response(one: Callable[[], int], responses: int) -> tuple[float, int]:
    size = one()  # warm
    started = time.process_time()
    for _ in range(responses):
        one()
    return 1e6 * (time.process_time() - started) / responses, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--body", type=int, default=68_000, help="body bytes (the bench median)")
    parser.add_argument("--chunked", action="store_true", help="chunks of 8 KiB, not a length")
    args = parser.parse_args()
    data = response_bytes(args.body, args.chunked)
    spent: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for round_ in range(args.rounds):
        sizes = set()
        for name, make in CONTENDERS.items():
            us, size = us_per_response(make(data), args.responses)
            spent[name].append(us)
            sizes.add(size)
        if sizes != {args.body}:
            raise SystemExit(f"the contenders read different bodies: {sorted(sizes)}")
        print(f"round {round_ + 1}: " + ", ".join(
            f"{name} {values[-1]:.1f} us" for name, values in spent.items()
        ), flush=True)  # fmt: skip
    median = {name: statistics.median(values) for name, values in spent.items()}
    print(json.dumps({
        "bench": "http_parsers", "unit": "CPU us per response",
        "ours": round(median["ours"], 2), "anchor": round(median["anchor"], 2),
        "ratio": round(median["anchor"] / median["ours"], 3),
        "http_client": round(median["http_client"], 2),
        "spread_ours": [round(min(spent["ours"]), 2), round(max(spent["ours"]), 2)],
        "spread_anchor": [round(min(spent["anchor"]), 2), round(max(spent["anchor"]), 2)],
        "ours_config": "http1.py's reader, request bytes from ConnectionPool",
        "anchor_config": "h11 Connection kept alive (request sent, response read, next cycle)",
        "framing": "chunked" if args.chunked else "content-length",
        "body_bytes": args.body, "responses": args.responses, "rounds": args.rounds,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
