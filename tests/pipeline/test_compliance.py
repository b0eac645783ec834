"""Removal lists and evaluation-set decontamination, end to end on the synthetic web."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import job_args, read_ledger, run_job_on
from PIL import Image

from paircurate.pipeline.job import fetch_fingerprint
from paircurate.pipeline.output.write_report import write_report
from paircurate.pipeline.run import parse_args
from paircurate.synthweb.evalset import write_evalset
from paircurate.transforms.dedup.bits import hamming

pytestmark = pytest.mark.slow


def test_removal_lists_leave_the_fetch_fingerprint_alone(manifest, tmp_path):
    plain, _ = parse_args(job_args(manifest, tmp_path))
    listed, _ = parse_args(
        job_args(manifest, tmp_path, "--exclude", "l.csv", "--decontaminate", "e")
    )
    assert listed.compliance.exclude == ("l.csv",)
    assert fetch_fingerprint(plain) == fetch_fingerprint(listed)


def test_a_takedown_list_on_a_finished_run_downloads_nothing(manifest, server, tmp_path):
    output = tmp_path / "out"
    run_job_on(manifest, output)
    before = {row["uid"]: row for row in read_ledger(output)}
    kept = sorted((r for r in before.values() if r["status"] == "kept"), key=lambda r: r["uid"])
    by_sha, by_phash = kept[:2], kept[2]
    # One list names its kind on the command line, the other per line, in Parquet.
    (tmp_path / "sha.txt").write_text("".join(f"{row['sha256']}\n" for row in by_sha))
    flipped = f"{int(by_phash['phash'], 16) ^ 0b11:016x}"  # 2 bits away
    pq.write_table(
        pa.table({"kind": ["phash"], "value": [flipped], "distance": [2]}),
        tmp_path / "phash.parquet",
    )
    requests = server.requests_served
    stats = run_job_on(
        manifest,
        output,
        "--exclude", f"sha256:{tmp_path / 'sha.txt'}",
        "--exclude", str(tmp_path / "phash.parquet"),
    )  # fmt: skip
    assert server.requests_served == requests
    after = {row["uid"]: row for row in read_ledger(output)}
    assert len(read_ledger(output)) == len(before) == stats["rows_in"]
    excluded = {uid: row for uid, row in after.items() if row["reason"] == "excluded"}
    # Every downloaded copy of a listed image goes, kept or not (same bytes, or pHash near).
    listed_sha = {row["sha256"]: line for line, row in enumerate(by_sha, start=1)}
    near = {
        uid
        for uid, row in before.items()
        if row["phash"] and hamming(int(row["phash"], 16), int(flipped, 16)) <= 2
    }
    expected = {uid for uid, row in before.items() if row["sha256"] in listed_sha} | near
    assert by_phash["uid"] in near and len(expected) >= 3
    assert sorted(excluded) == sorted(expected)
    for row in excluded.values():
        if row["sha256"] in listed_sha:
            where = f"{tmp_path / 'sha.txt'}:{listed_sha[row['sha256']]}"
            assert row["compliance_match"] == where
        else:
            assert row["reason_detail"].endswith(f"line 1 of {tmp_path / 'phash.parquet'}")
    assert stats["reason"]["excluded"]["count"] == len(expected)
    unchanged = [uid for uid in before if uid not in excluded]
    assert all(after[uid]["reason"] == before[uid]["reason"] for uid in unchanged if
               before[uid]["reason"] != "near_duplicate")  # fmt: skip


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(self.path)
        body = self.server.files.get(self.path.strip("/"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "image/jpeg" if body else "text/plain")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args) -> None:
        pass


def _copies(jpeg: bytes) -> dict[str, bytes]:
    """Re-encoded, resized and slightly cropped copies of an evaluation image."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    width, height = image.size
    edits = {
        "reencoded": (image, "JPEG", 60),
        "resized": (image.resize((width * 3 // 4, height * 3 // 4)), "PNG", None),
        "cropped": (image.crop((2, 2, width - 2, height - 2)), "JPEG", 90),
    }
    copies = {}
    for name, (edited, fmt, quality) in edits.items():
        buffer = io.BytesIO()
        edited.save(buffer, fmt, **({"quality": quality} if quality else {}))
        copies[name] = buffer.getvalue()
    return copies


def test_decontamination_drops_copies_of_eval_images_and_never_fetches_listed_urls(
    manifest, tmp_path
):
    evalset = tmp_path / "evalset"
    write_evalset(evalset, n_images=24, seed=3)
    with tarfile.open(evalset / "evalset-00000.tar") as tar:
        jpegs = {
            member.name: tar.extractfile(member).read()
            for member in tar
            if member.name.endswith(".jpg")
        }
    served = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    served.paths, served.files = [], {}
    truth = {}
    for name in sorted(jpegs)[:6]:
        for edit, body in _copies(jpegs[name]).items():
            path = f"{edit}-{name}"
            served.files[path] = body
            truth[path] = f"{evalset / 'evalset-00000.tar'}:{name}"
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{served.server_address[1]}"
    pool = tmp_path / "copies.csv"
    with pool.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["url", "caption", "truth_label", "truth_duplicate_of"])
        for number, path in enumerate(sorted(truth)):
            caption = f"a test photo of coloured shapes, copy {number}"
            writer.writerow([f"{base}/{path}", caption, "copy", ""])
    listed = sorted(truth)[0]
    (tmp_path / "urls.csv").write_text(f"kind,value\nurl,{base.upper()}/{listed}\n")
    output = tmp_path / "out"
    try:
        stats = json.loads(json.dumps(run_job_on(
            f"{manifest},{pool}",
            output,
            "--decontaminate", str(evalset),
            "--exclude", str(tmp_path / "urls.csv"),
            "--decontam-cosine", "0.999",
        )))  # fmt: skip
    finally:
        served.shutdown()
        served.server_close()
    ledger = read_ledger(output)
    assert len(ledger) == stats["rows_in"] == len({row["uid"] for row in ledger})
    assert f"/{listed}" not in served.paths
    by_path = {row["url"].rsplit("/", 1)[1]: row for row in ledger if row["source"] == str(pool)}
    assert by_path[listed]["reason"] == "excluded"
    assert by_path[listed]["compliance_match"] == f"{tmp_path / 'urls.csv'}:2"
    for path, eval_name in truth.items():
        if path != listed:
            assert by_path[path]["reason"] == "eval_contamination", path
            assert by_path[path]["compliance_match"] == eval_name
    web_rows = [row for row in ledger if row["source"] != str(pool)]
    assert not [row for row in web_rows if row["reason"] == "eval_contamination"]
    page = Path(write_report(str(output))).read_text()
    contaminated = len(truth) - 1
    assert f"{contaminated} pool images were dropped as near-copies" in page
    assert page.count('<img src="data:image/webp;base64,') >= 2 * contaminated
    assert page.count('alt="pool image"') == page.count('alt="evaluation image"') == contaminated
