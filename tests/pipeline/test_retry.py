"""``paircurate retry-failed``: only retryable failures are fetched again, and merged in.

The web here fails some URLs once (503 or 429) and serves them on every later
request, so a first run records them as retryable failures and the retry run
finds them. Rows that fail for good (http_500 answers 500 every time) are
retried and fail again; every other row must come out as it was.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
import threading
from collections import Counter
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from conftest import PAIRS, job_args, read_ledger, run_job_on, shard_files

from paircurate.pipeline.cli import main
from paircurate.pipeline.filesystem import FILES
from paircurate.pipeline.retry import check_beam_args, config_from_options
from paircurate.pipeline.run import json_safe, parse_args
from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import ConfigError
from paircurate.synthweb import SyntheticWeb, write_manifest
from paircurate.transforms.output.store import RawStore

FLAKY_CLEAN_ROWS = 8  # clean rows that fail once, half with 503 and half with 429


class _FlakyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, web: SyntheticWeb, fail_once: dict[str, int]):
        self.web, self.fail_once = web, fail_once
        self.requests: Counter[str] = Counter()
        self.failed: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _FlakyHandler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Downloaders hanging up on keep-alive connections are normal here."""


class _FlakyHandler(BaseHTTPRequestHandler):
    """The synthetic web without stalls; a path in ``fail_once`` fails its first request."""

    protocol_version = "HTTP/1.1"
    server: _FlakyServer

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.requests[path] += 1
            fail = path in self.server.fail_once and path not in self.server.failed
            self.server.failed.add(path)
        if fail:
            status, headers, body = self.server.fail_once[path], (), b"try again later"
        else:
            response = self.server.web.response(path)
            status, headers, body = response.status, response.headers, response.body
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _fail_once(web: SyntheticWeb) -> dict[str, int]:
    """The "slow" rows and a few clean ones, none of them the original of a duplicate."""
    originals = {entry.duplicate_of for entry in web}
    candidates = [e for e in web if e.index not in originals and e.label in ("slow", "clean")]
    slow = [e for e in candidates if e.label == "slow"]
    clean = [e for e in candidates if e.label == "clean"][:FLAKY_CLEAN_ROWS]
    return {entry.path: 503 if i % 2 else 429 for i, entry in enumerate(slow + clean)}


@pytest.fixture(scope="module")
def flaky(web, tmp_path_factory):
    """(server, manifest path) of a web whose chosen URLs fail the first time."""
    server = _FlakyServer(web, _fail_once(web))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    manifest = write_manifest(web, base_url, str(tmp_path_factory.mktemp("in") / "in.parquet"))
    yield server, manifest
    server.shutdown()
    server.server_close()
    thread.join()


def _retryable(row: dict) -> bool:
    return row["reason"] is not None and REASONS[row["reason"]].retryable


def _url_path(row: dict) -> str:
    return urlsplit(row["url"]).path


def _read_bytes(paths: list[Path]) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in paths}


def _check_outputs_agree(output: Path, ledger: list[dict]) -> None:
    """sizes.json, the shard tars, the shard Parquet and the ledger tell one story."""
    sizes = json.loads((output / "shards" / "sizes.json").read_text())
    kept = Counter(f"{row['shard']}.tar" for row in ledger if row["status"] == "kept")
    assert sizes == {path.name: kept[path.name] for path in shard_files(output, ".tar")}
    for tar_path in shard_files(output, ".tar"):
        with tarfile.open(tar_path) as tar:
            keys = sorted(
                name.rsplit(".", 1)[0] for name in tar.getnames() if name.endswith("json")
            )
        table = pq.read_table(tar_path.with_suffix(".parquet"))
        assert keys == sorted(table.column("key").to_pylist())
        assert len(keys) == sizes[tar_path.name]


def _check_raw_shards(output: Path) -> None:
    """Each chunk's marker names the one tar left of it (the first run's is cleaned up),
    and that tar holds exactly the images of the marker's rows that succeeded."""
    markers = sorted(output.glob("fetch/*/*.parquet"))
    assert markers
    for parquet in markers:
        rows, tar_path = RawStore(FILES, str(parquet.parent)).rows_and_tar(int(parquet.stem))
        assert sorted(parquet.parent.glob(f"{parquet.stem}-*.tar")) == [Path(tar_path)]
        with tarfile.open(tar_path) as tar:
            names = tar.getnames()
        assert sorted(names) == sorted(f"{r['uid']}.jpg" for r in rows if r["reason"] is None)


@pytest.mark.slow
def test_retry_failed_fetches_only_retryable_rows_and_merges_them(flaky, tmp_path, caplog):
    server, manifest = flaky
    output = tmp_path / "out"
    first = run_job_on(manifest, output, "--retries", "0")
    before = {row["row_number"]: row for row in read_ledger(output)}
    shards_before = _read_bytes(shard_files(output, ".tar"))
    retryable = [row for row in before.values() if _retryable(row)]
    failing_once = server.failed & server.fail_once.keys()
    assert {_url_path(row) for row in retryable if row["truth_label"] != "http_500"} == failing_once
    assert len(failing_once) >= FLAKY_CLEAN_ROWS
    server.requests.clear()

    with caplog.at_level("INFO"):
        assert main(["retry-failed", "--output", str(output)]) == 0
    stats = json.loads((output / "stats.json").read_text())
    after = {row["row_number"]: row for row in read_ledger(output)}

    # Only the retryable rows were asked for again, each URL once, beside the origin's
    # opt-out files (robots.txt, tdmrep.json), read once per origin by the new run.
    policy = {"/robots.txt", "/.well-known/tdmrep.json"}
    images = Counter({path: n for path, n in server.requests.items() if path not in policy})
    assert images == Counter({_url_path(row): 1 for row in retryable})
    assert all(server.requests[path] <= 1 for path in policy)
    assert stats["retry"] == {"rows": len(retryable), "recovered": len(failing_once)}
    assert f"{len(retryable)} failed rows downloaded again, {len(failing_once)}" in caplog.text
    for row in retryable:
        now = after[row["row_number"]]
        if row["truth_label"] == "http_500":
            assert (now["status"], now["reason"]) == ("failed", "download_http_5xx")
        else:
            assert (now["status"], now["reason"], now["http_status"]) == ("kept", None, 200)
            assert now["shard"] is not None and now["key"] == now["uid"]
    retried = {row["row_number"] for row in retryable}
    assert {n: row for n, row in after.items() if n not in retried} == {
        n: row for n, row in before.items() if n not in retried
    }
    assert len(after) == stats["rows_in"] == first["rows_in"] == PAIRS
    assert stats["kept"] == first["kept"] + len(failing_once)
    assert stats["options"] == {**first["options"], "output": {**first["options"]["output"],
                                "retry_failed": True}}  # fmt: skip
    # Shards without a retried row are the same bytes; the others gained samples.
    touched = {f"{after[n]['shard']}.tar" for n in retried if after[n]["shard"]}
    shards_after = _read_bytes(shard_files(output, ".tar"))
    assert touched and shards_after.keys() == shards_before.keys()
    for name, data in shards_after.items():
        assert (data == shards_before[name]) == (name not in touched), name
    _check_outputs_agree(output, list(after.values()))
    _check_raw_shards(output)


def test_retry_failed_without_stats_json_is_a_clear_error(tmp_path, capsys):
    assert main(["retry-failed", "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path}/stats.json not found" in error
    assert "retry-failed needs the folder of a finished run" in error


def test_retry_failed_refuses_options_that_would_change_the_run():
    check_beam_args(["--runner=DirectRunner", "--direct_num_workers", "2"])
    with pytest.raises(ConfigError, match="--no-near-duplicates, --timeout would change them"):
        check_beam_args(["--timeout=3", "--no-near-duplicates", "--direct_num_workers=2"])


def test_stored_options_give_back_the_same_config(tmp_path):
    argv = job_args("in.parquet", tmp_path, "--languages", "en,de", "--max-aspect-ratio", "4")
    config, _ = parse_args(argv)
    unlimited, _ = parse_args([a for a in argv if a not in ("--max-aspect-ratio", "4")])
    assert math.isinf(unlimited.image.max_aspect_ratio)
    for original in (config, unlimited):
        stored = json.loads(json.dumps(json_safe(asdict(original))))
        assert config_from_options(stored) == original


def test_options_an_older_run_lacks_take_their_defaults(tmp_path):
    config, _ = parse_args(job_args("in.parquet", tmp_path))
    stored = json_safe(asdict(config))
    del stored["output"]["retry_failed"]
    stored["output"]["option_of_another_version"] = 1
    assert config_from_options(stored) == config
    assert os.fspath(tmp_path) == config_from_options(stored).output.output
