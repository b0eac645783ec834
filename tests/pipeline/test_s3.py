"""The whole job on S3 (moto's server): input, outputs, raw shards, the report and retry-failed.

Credentials and the endpoint reach Beam's filesystems as Beam's own S3 options
(``--s3_endpoint_url`` and friends), in the launching process as in the workers.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import PAIRS, job_args, read_ledger, shard_files

from paircurate.pipeline.cli import main
from paircurate.pipeline.filesystem import FILES
from paircurate.schemas.codes import REASONS
from paircurate.transforms.output.store import RawStore


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three jobs: local, on S3, and the retry on S3
def test_a_job_reads_and_writes_s3_and_retries_there(s3, manifest, tmp_path):
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    s3.put(f"{prefix}/input/manifest.parquet", Path(manifest).read_bytes())
    source = s3.url(f"{prefix}/input/manifest.parquet")
    output = s3.url(f"{prefix}/out")
    # The same input read from S3 into a local folder: the shards to compare with.
    local = tmp_path / "local"
    assert main(["run", *job_args(source, local), *s3.beam_args]) == 0

    assert main(["run", *job_args(source, output), *s3.beam_args]) == 0

    ledger = s3.ledger(f"{prefix}/out")
    assert sorted(Counter(row["row_number"] for row in ledger).values()) == [1] * PAIRS
    assert {row["source"] for row in ledger} == {source}
    # The tars, their DALI indexes and sizes.json; shard Parquet records download times, which
    # differ per run, and the wids index names its folder.
    shard_keys = [key for key in s3.keys(f"{prefix}/out/shards/")
                  if not key.endswith((".parquet", "shardindex.json"))]  # fmt: skip
    shards = {key.rsplit("/", 1)[1]: s3.get(key) for key in shard_keys}
    local_files = [*shard_files(local, ".tar"), *shard_files(local, ".idx")]
    local_shards = {p.name: p.read_bytes() for p in local_files}
    local_shards["sizes.json"] = (local / "shards" / "sizes.json").read_bytes()
    assert shards == local_shards and len(shards) > 1
    wids = json.loads(s3.get(f"{prefix}/out/shards/shardindex.json"))
    assert (
        wids["shardlist"]
        == json.loads((local / "shards" / "shardindex.json").read_text())["shardlist"]
    )
    stats = json.loads(s3.get(f"{prefix}/out/stats.json"))
    assert stats["rows_in"] == PAIRS and stats["kept"] > 0
    page = s3.get(f"{prefix}/out/report.html").decode()
    assert page.lstrip().lower().startswith("<!doctype html>") and "data:image/webp" in page
    # Each committed chunk has its marker and the one tar it names; no temporaries.
    raw_keys = s3.keys(f"{prefix}/out/{stats['raw_shards']}/")
    markers = [key for key in raw_keys if key.endswith(".parquet")]
    store = RawStore(FILES, s3.url(f"{prefix}/out/{stats['raw_shards']}"))
    named = {store.tar_of(int(key.rsplit("/", 1)[1][:5])) for key in markers}
    assert markers and named == {s3.url(key) for key in raw_keys if key.endswith(".tar")}
    assert not [key for key in s3.keys(prefix) if ".tmp-" in key]

    retryable = [row for row in ledger if row["reason"] and REASONS[row["reason"]].retryable]
    assert retryable  # the session's web has slow and failing URLs
    assert main(["retry-failed", "--output", output, *s3.beam_args]) == 0
    after = s3.ledger(f"{prefix}/out")
    assert sorted(Counter(row["row_number"] for row in after).values()) == [1] * PAIRS
    retried = json.loads(s3.get(f"{prefix}/out/stats.json"))["retry"]
    assert retried["rows"] == len(retryable)
    assert len(read_ledger(local)) == PAIRS
