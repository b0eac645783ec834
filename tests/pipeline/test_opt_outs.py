"""Opt-outs end to end: a run against a site that uses every protocol, then its compliance summary.

One small job through the CLI, as a user runs it: stats.json's "compliance" and
the report's Compliance section count, per protocol, the rows the ledger says
each removed.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import read_ledger
from PIL import Image

from paircurate.pipeline import cli
from paircurate.pipeline.output.write_report import REPORT_NAME

TOKEN = "optout-test"
POLICY = "https://rights.example/policy.json"
ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\nContent-Usage: /notrain/ train-ai=n\n"
TDMREP_JSON = json.dumps(
    [{"location": "/reserved/", "tdm-reservation": 1, "tdm-policy": POLICY}]
).encode()
# folder -> (count, response headers, expected reason)
FOLDERS = {
    "img": (4, {}, None),
    "private": (2, {}, "download_robots_disallowed"),
    "reserved": (2, {}, "download_tdm_reserved"),
    "tdmheader": (1, {"tdm-reservation": "1"}, "download_tdm_reserved"),
    "noml": (1, {"X-Robots-Tag": "noml"}, "download_opted_out"),
    "usage": (1, {"Content-Usage": "train-ai=n"}, "download_ai_optout"),
    "notrain": (2, {}, "download_ai_optout"),
}


def _noise_png(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (80, 64), bytes(rng.randrange(256) for _ in range(80 * 64 * 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.asked[self.path] += 1
        if self.path == "/robots.txt":
            return self._send(ROBOTS_TXT, "text/plain")
        if self.path == "/.well-known/tdmrep.json":
            return self._send(TDMREP_JSON, "application/json")
        match = re.fullmatch(r"/(\w+)/(\d+)\.png", self.path)
        if match is None or match.group(1) not in FOLDERS:
            return self._send(b"not found", "text/plain", status=404)
        headers = FOLDERS[match.group(1)][1]
        seed = list(FOLDERS).index(match.group(1)) * 100 + int(match.group(2))
        return self._send(_noise_png(seed), "image/png", **headers)

    def _send(self, body: bytes, content_type: str, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    server.asked = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


WORDS = "red green blue small large quiet bright old new round square tall".split()


@pytest.mark.slow
def test_a_run_reports_what_it_respected(site, tmp_path) -> None:
    base = f"http://127.0.0.1:{site.server_address[1]}"
    rows, expected = [], {}
    for folder, (count, _, reason) in FOLDERS.items():
        for n in range(count):
            url = f"{base}/{folder}/{n}.png"
            words = random.Random(f"{folder}{n}").sample(WORDS, 5)
            rows.append({"url": url, "caption": f"a photo of a {' '.join(words)} {folder} thing"})
            expected[url] = reason
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "out"
    args = [
        "run", "--input", str(manifest), "--output", str(output), "--allow-private-networks",
        "--clip-model", "none", "--respect-robots-txt", "--user-agent-token", TOKEN,
    ]  # fmt: skip
    assert cli.main(args) == 0

    ledger = {row["url"]: row for row in read_ledger(output)}
    assert {url: row["reason"] for url, row in ledger.items()} == expected
    assert ledger[f"{base}/reserved/0.png"]["reason_detail"] == (
        f"TDM rights reserved by /.well-known/tdmrep.json (location '/reserved/'), "
        f"tdm-policy {POLICY}"
    )
    assert not any(path.startswith(("/private/", "/notrain/")) for path in site.asked)

    stats = json.loads((output / "stats.json").read_text())
    compliance = stats["compliance"]
    assert compliance["user_agent"].endswith(f"(compatible; {TOKEN})")
    assert compliance["user_agent_token"] == TOKEN
    removed = {e["name"]: (e["honoured"], e["rows_removed"]) for e in compliance["respected"]}
    assert removed == {
        "X-Robots-Tag": (True, 1),
        "robots.txt": (True, 2),
        "TDMRep": (True, 3),
        "AI preferences": (True, 3),
        "removal lists": (False, 0),  # none given: listed, not honoured
        "evaluation-set decontamination": (False, 0),
    }
    by_name = {e["name"]: e for e in compliance["respected"]}
    assert by_name["TDMRep"]["reasons"] == {
        "download_tdm_reserved": 3,
        "download_tdmrep_unavailable": 0,
    }

    page = (output / REPORT_NAME).read_text()
    section = page[page.index('<section id="compliance">') :]
    section = section[: section.index("</section>")]
    assert f"data-agent-token>{TOKEN}</span>" in section
    for name, (honoured, count) in removed.items():
        flag = "yes" if honoured else "no"
        assert re.search(
            rf'<tr data-respects="{re.escape(name)}" data-honoured="{flag}">.*?'
            rf'data-removed="{count}"',
            section,
        ), name
