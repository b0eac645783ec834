"""Exact input repeats get their own uids, so ledger uids, shard keys and tar members are unique."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_ledger, run_job_on, shard_files

from paircurate.transforms.ingest.inputs import make_uid, repeat_uid

pytestmark = pytest.mark.slow

REPEATED = 40  # rows of the web repeated exactly, some of them twice


@pytest.fixture(scope="module")
def repeated_input(manifest, tmp_path_factory) -> tuple[str, pa.Table]:
    """The session's web as a.parquet, and b.parquet with exact copies of its first rows:
    clean rows, URL repeats, rows the caption rules drop, failed downloads."""
    table = pq.read_table(manifest)
    head = table.slice(0, REPEATED)
    folder = tmp_path_factory.mktemp("repeats")
    pq.write_table(table, folder / "a.parquet")
    pq.write_table(pa.concat_tables([head, head.slice(0, 10)]), folder / "b.parquet")
    return str(folder), table


def check_unique(output: Path) -> list[dict]:
    ledger = read_ledger(output)
    uids = Counter(row["uid"] for row in ledger)
    assert uids.most_common(1)[0][1] == 1
    keys = Counter(
        key
        for path in shard_files(output, ".parquet")
        for key in pq.read_table(path, columns=["key"])["key"].to_pylist()
    )
    assert keys and keys.most_common(1)[0][1] == 1
    members = Counter()
    for path in shard_files(output, ".tar"):
        with tarfile.open(path) as tar:
            members.update(tar.getnames())
    assert members and members.most_common(1)[0][1] == 1
    assert sum(row["status"] == "kept" for row in ledger) == len(keys)
    return ledger


def copies_by_pair(ledger: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in sorted(ledger, key=lambda r: (r["source"], r["row_number"])):
        groups.setdefault((row["url"], row["caption"]), []).append(row)
    return groups


@pytest.mark.parametrize("url_dedup", ["url", "off"])
def test_uids_keys_and_members_are_unique(repeated_input, tmp_path, url_dedup):
    folder, table = repeated_input
    output = tmp_path / "out"
    run_job_on(folder, output, "--url-dedup", url_dedup)
    ledger = check_unique(output)
    assert len(ledger) == table.num_rows + REPEATED + 10
    repeated = [group for group in copies_by_pair(ledger).values() if len(group) > 1]
    assert len(repeated) >= REPEATED
    assert any(len(group) == 3 for group in repeated)
    statuses = Counter(group[0]["status"] for group in repeated)
    assert statuses["kept"] and statuses["dropped"] and statuses["failed"]
    for group in repeated:
        first, *repeats = group
        # The first copy keeps the content-based uid; the n-th repeat hashes n in.
        assert first["uid"] == make_uid(first["url"], first["caption"])
        assert [row["uid"] for row in repeats] == [
            repeat_uid(first["uid"], n) for n in range(1, len(group))
        ]
    # With "off" a repeat is downloaded again and the image dedup keeps the first copy.
    reason = "url_duplicate" if url_dedup == "url" else "near_duplicate"
    for group in repeated:
        if group[0]["status"] == "kept":
            assert {row["reason"] for row in group[1:]} == {reason}, group
            assert {row["duplicate_of"] for row in group[1:]} == {group[0]["uid"]}
