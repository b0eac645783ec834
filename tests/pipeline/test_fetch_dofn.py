"""The Fetch DoFn's copies in one worker process (concurrent bundles) share one downloader."""

from __future__ import annotations

import pickle

from paircurate.pipeline.crawl.fetch_chunks import DOWNLOADERS, FetchChunkDoFn
from paircurate.pipeline.job import raw_store_of
from paircurate.pipeline.run import parse_args
from paircurate.schemas.records import RowCodec, ledger_schema


def fetch_dofn(tmp_path, *args: str) -> FetchChunkDoFn:
    config, _ = parse_args(["--input", "in.parquet", "--output", str(tmp_path / "out"), *args])
    return FetchChunkDoFn(config, raw_store_of(config), RowCodec(ledger_schema(())).schema)


def test_copies_of_one_job_share_a_downloader_until_the_last_tears_down(tmp_path) -> None:
    job = fetch_dofn(tmp_path)
    # A runner deserialises a copy of the DoFn for each bundle it runs at once.
    first, second = pickle.loads(pickle.dumps(job)), pickle.loads(pickle.dumps(job))
    other_job = fetch_dofn(tmp_path)
    held = len(DOWNLOADERS)
    for dofn in (first, second, other_job):
        dofn.setup()
    try:
        assert first.downloader is second.downloader
        assert other_job.downloader is not first.downloader
        # One byte budget and one per-host cap for the process, not one per bundle.
        assert first.downloader.budget is second.downloader.budget
        assert len(DOWNLOADERS) == held + 2
        shared = first.downloader
        first.teardown()
        assert second.downloader is shared and len(DOWNLOADERS) == held + 2
    finally:
        second.teardown()
        other_job.teardown()
    assert len(DOWNLOADERS) == held


def test_a_text_only_job_holds_no_downloader(tmp_path) -> None:
    dofn = fetch_dofn(tmp_path, "--text-only")
    held = len(DOWNLOADERS)
    dofn.setup()
    assert dofn.downloader is None and len(DOWNLOADERS) == held
    dofn.teardown()
