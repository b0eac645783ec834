"""The job's URL check and chunk keys: new rows out, the rows given left as they were."""

from __future__ import annotations

import copy

from paircurate.pipeline.job import check_url, fetch_chunk_key, ledger_chunk_key
from paircurate.transforms.dedup.url_dedup import url_digest
from paircurate.transforms.output.shards import chunk_of


def test_check_url_drops_into_a_new_row() -> None:
    row = {"uid": "u", "url": "ftp://example.com/a.jpg", "status": None, "reason": None}
    before = copy.deepcopy(row)
    checked = check_url(row)
    assert row == before
    assert (checked["status"], checked["reason"]) == ("failed", "unsupported_scheme")
    fine = {"uid": "v", "url": "http://example.com/a.jpg", "status": None}
    assert check_url(fine) == fine


def test_fetch_chunk_key_records_the_chunk_on_a_new_row() -> None:
    row = {"uid": "u", "url": "http://Example.com/a.jpg"}
    chunk, keyed = fetch_chunk_key(row, 7)
    assert chunk == chunk_of(url_digest("http://example.com/a.jpg"), 7)
    assert keyed == {**row, "chunk": chunk} and "chunk" not in row


def test_ledger_chunk_key_keeps_a_fetch_chunk_and_assigns_others_by_uid() -> None:
    fetched = {"uid": "a" * 32, "chunk": 3}
    assert ledger_chunk_key(fetched, 7) == (3, fetched)
    settled = {"uid": "b" * 32, "chunk": None}
    chunk, keyed = ledger_chunk_key(settled, 7)
    assert chunk == chunk_of("b" * 32, 7) and keyed["chunk"] == chunk
    assert settled["chunk"] is None
