"""The synthetic crawl: the same bytes for the same seed, paths lists, truth for every <img>."""

from __future__ import annotations

import gzip
import os

import pyarrow.parquet as pq

from paircurate.synthweb import SyntheticWeb
from paircurate.synthweb.crawl import CrawlMix, write_crawl


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    web = SyntheticWeb(60, seed=3)
    first = write_crawl(web, "http://127.0.0.1:9", str(tmp_path / "a"), files=2, seed=3)
    second = write_crawl(web, "http://127.0.0.1:9", str(tmp_path / "b"), files=2, seed=3)
    for one, two in zip(
        first.warc_files + first.wat_files, second.warc_files + second.wat_files, strict=True
    ):
        with open(one, "rb") as a, open(two, "rb") as b:
            assert a.read() == b.read()


def test_paths_lists_and_truth(tmp_path):
    web = SyntheticWeb(40, seed=1)
    crawl = write_crawl(
        web, "http://127.0.0.1:9", str(tmp_path), files=2, mix=CrawlMix(faults=False)
    )
    with open(tmp_path / "wat.paths.gz", "rb") as stream:
        listed = gzip.decompress(stream.read()).decode().split()
    assert listed == [os.path.basename(path) for path in crawl.wat_files]
    truth = pq.read_table(crawl.truth).to_pylist()
    shown = {row["entry"] for row in truth if row["view"] == "warc" and row["entry"] >= 0}
    assert shown == set(range(40))  # every pair of the web is on a page
    assert all(row["record_reason"] is None for row in truth)
