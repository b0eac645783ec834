"""``paircurate remove`` on a finished run: no request, a new version, a diff that cleans a copy."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import read_ledger, run_job_on
from PIL import Image

from paircurate.pipeline.remove_command import remove
from paircurate.schemas.config import ConfigError
from paircurate.transforms.compliance.lists import KIND_RULES
from paircurate.transforms.compliance.pdq import pdq_of_bytes
from paircurate.transforms.compliance.removal import PUBLISHED

pytestmark = pytest.mark.slow

PDQ_DISTANCE = KIND_RULES["pdq"].default_distance


def copy_run(first_run, folder: Path) -> Path:
    """A copy of the session's run, in a folder of the same name (the wids index names it)."""
    source, _ = first_run
    target = folder / Path(source).name
    shutil.copytree(source, target)
    return target


def images_of(run: Path) -> dict[str, bytes]:
    """uid -> image bytes of every image the run holds: its shards' and its raw shards'."""
    rows = {row["uid"]: row for row in read_ledger(run)}
    found = {}
    for tar_path in [*run.glob("shards/*.tar"), *run.glob("fetch/*/*.tar")]:
        with tarfile.open(tar_path) as tar:
            for info in tar.getmembers():
                stem, ext = info.name.split(".", 1)
                if stem in rows and ext == rows[stem]["image_format"]:
                    found[stem] = tar.extractfile(info).read()
    return found


def resized_copy(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    buffer = io.BytesIO()
    image.resize((image.width * 2 // 3, image.height * 2 // 3)).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def removable(row: dict) -> bool:
    return (row["status"] == "kept" or row["image_format"] is not None) and row["reason"] not in (
        "excluded", "eval_contamination"
    )  # fmt: skip


def write_lists(run: Path, folder: Path) -> tuple[list[str], dict[str, tuple[str, str, int]]]:
    """Lists naming rows of ``run`` by md5, sha1, URL and PDQ; returns the --exclude specs and
    uid -> (kind, list, line) of every row they must take out: its first list, its first line."""
    rows = read_ledger(run)
    kept = sorted((r for r in rows if r["status"] == "kept"), key=lambda r: r["uid"])
    dropped = [r for r in rows if r["status"] == "dropped" and r["image_format"]]
    md5, mixed, pdq = folder / "iwf-md5.txt", folder / "mixed.csv", folder / "c3p-pdq.txt"
    md5.write_text(f"md5\n{kept[0]['md5']}\n{dropped[0]['md5']}\n")
    mixed.write_text(f"kind,value\nsha1,{kept[1]['sha1']}\nurl,{kept[2]['url']}\n")
    images = images_of(run)
    hashes = {uid: pdq_of_bytes(data) for uid, data in images.items()}
    target = max(kept[3:], key=lambda row: hashes[row["uid"]].quality)
    listed = pdq_of_bytes(resized_copy(images[target["uid"]]))
    pdq.write_text(f"{listed.hex}\n")
    entries = [  # (list, line, kind, does a row match)
        (md5, 2, "md5", lambda r: r["md5"] == kept[0]["md5"]),
        (md5, 3, "md5", lambda r: r["md5"] == dropped[0]["md5"]),
        (mixed, 2, "sha1", lambda r: r["sha1"] == kept[1]["sha1"]),
        (mixed, 3, "url", lambda r: r["url"] == kept[2]["url"]),
        (pdq, 1, "pdq", lambda r: near_pdq(hashes.get(r["uid"]), listed)),
    ]
    expected = {}
    for row in filter(removable, rows):
        found = [(str(path), line, kind) for path, line, kind, test in entries if test(row)]
        if found:
            path, line, kind = found[0]
            expected[row["uid"]] = (kind, path, line)
    assert target["uid"] in expected and kept[0]["uid"] in expected
    return [str(md5), str(mixed), f"pdq:{pdq}"], expected


def near_pdq(found, listed) -> bool:
    """The oracle of a PDQ match: a usable hash within the default distance."""
    if found is None or not found.usable:
        return False
    return int(np.unpackbits(found.packed ^ listed.packed).sum()) <= PDQ_DISTANCE


@pytest.fixture(scope="module")
def removed(first_run, server, tmp_path_factory):
    """The run removed from by lists (a), a copy cleaned by its diff (b), and what was listed."""
    folder = tmp_path_factory.mktemp("remove")
    original = copy_run(first_run, folder / "original")
    a, b = copy_run(first_run, folder / "a"), copy_run(first_run, folder / "b")
    specs, expected = write_lists(a, folder)
    requests = server.requests_served
    stats = remove(str(a), specs, "")
    assert server.requests_served == requests  # nothing was downloaded
    diff_stats = remove(str(b), [], str(a / "removed.parquet"))
    return original, a, b, stats, diff_stats, expected, specs


def test_listed_rows_leave_the_run_and_only_the_diff_names_them(removed):
    original, a, _, stats, _, expected, _ = removed
    before = {row["uid"]: row for row in read_ledger(original)}
    after = {row["uid"]: row for row in read_ledger(a)}
    assert len(after) == len(before) == stats["rows_in"]
    excluded = {uid for uid, row in after.items() if row["reason"] == "excluded"}
    assert excluded == set(expected)
    for uid, (_, path, line) in expected.items():
        assert after[uid]["compliance_match"] == f"{path}:{line}"
        assert after[uid]["shard"] is None and after[uid]["reason_detail"].endswith(path)
    unchanged = set(before) - excluded
    assert all(after[uid] == before[uid] for uid in unchanged)
    diff = pq.read_table(a / "removed.parquet")
    assert diff.schema.names == PUBLISHED.names  # no hash, URL or caption in it
    published = {row["uid"]: row for row in diff.to_pylist()}
    assert set(published) == set(expected)
    for uid, row in published.items():
        assert (row["kind"], row["list"], row["line"], row["version"]) == (*expected[uid], 2)
        assert (row["shard"], row["key"]) == (before[uid]["shard"], before[uid]["key"])
    samples = sum(1 for uid in expected if before[uid]["status"] == "kept")
    assert stats["kept"] == len(unchanged & {u for u, r in before.items() if r["status"] == "kept"})
    assert stats["version"] == 2 and stats["removals"][0]["samples_removed"] == samples
    assert stats["reason"]["excluded"]["count"] == len(expected)


def test_no_copy_of_a_removed_image_stays_and_readers_see_the_new_shards(removed):
    _, a, _, stats, _, expected, _ = removed
    assert not set(images_of(a)) & set(expected)  # shards and raw shards alike
    sizes = json.loads((a / "shards" / "sizes.json").read_text())
    assert sum(sizes.values()) == stats["kept"]
    wids = pytest.importorskip("wids")
    dataset = wids.ShardListDataset(
        str(a / "shards" / "shardindex.json"), cache_dir=str(a.parent / "wids"), transformations=[]
    )
    keys = {dataset[i]["__key__"] for i in range(len(dataset))}
    assert len(keys) == stats["kept"] and not keys & set(expected)
    mlc = pytest.importorskip("mlcroissant")
    card = mlc.Dataset(jsonld=str(a / "croissant.json"))
    assert len(list(card.records("samples"))) == stats["kept"]
    assert "removed.parquet" in (a / "DATASET_CARD.md").read_text()


def test_the_diff_cleans_a_copy_to_the_same_bytes(removed):
    _, a, b, stats, diff_stats, _, _ = removed
    assert (diff_stats["version"], diff_stats["kept"]) == (stats["version"], stats["kept"])
    published = [
        *sorted(a.glob("shards/*")), *sorted(a.glob("ledger/*.parquet")), a / "removed.parquet"
    ]  # fmt: skip
    assert len(published) > 6
    for path in published:
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes(), path
    (raw_a,), (raw_b,) = a.glob("fetch/*/"), b.glob("fetch/*/")
    for marker in raw_a.glob("*.parquet"):
        assert pq.read_table(marker).to_pylist() == pq.read_table(raw_b / marker.name).to_pylist()


def test_applying_the_diff_again_changes_nothing(removed):
    _, a, b, _, diff_stats, _, _ = removed
    ledger = sorted(p.read_bytes() for p in b.glob("ledger/*.parquet"))
    again = remove(str(b), [], str(a / "removed.parquet"))
    assert again["version"] == diff_stats["version"]
    assert sorted(p.read_bytes() for p in b.glob("ledger/*.parquet")) == ledger


def test_a_run_given_the_same_lists_excludes_the_same_rows(removed, manifest, tmp_path):
    # The chunk of a listed URL is fetched again without it; the other chunks' raw shards,
    # and so the digests and images the lists meet, are the original run's.
    original, _, _, _, _, expected, specs = removed
    rerun = tmp_path / original.name
    shutil.copytree(original, rerun)
    run_job_on(manifest, rerun, *(arg for spec in specs for arg in ("--exclude", spec)))
    after = {row["uid"]: row for row in read_ledger(rerun)}
    excluded = {uid: row["compliance_match"] for uid, row in after.items()
                if row["reason"] == "excluded"}  # fmt: skip
    assert excluded == {uid: f"{path}:{line}" for uid, (_, path, line) in expected.items()}


def test_bad_lists_and_requests_are_refused_before_anything_changes(first_run, tmp_path):
    run = copy_run(first_run, tmp_path)
    ledger = sorted(p.read_bytes() for p in run.glob("ledger/*.parquet"))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"md5,{'0' * 32}\nmd5,not-hex\n")
    with pytest.raises(ConfigError, match="bad.csv line 2: a md5 entry is 32 hex digits"):
        remove(str(run), [str(bad)], "")
    with pytest.raises(ConfigError, match="give removal lists"):
        remove(str(run), [], "")
    with pytest.raises(ConfigError, match="not found"):
        remove(str(tmp_path / "nothing"), [str(bad)], "")
    assert sorted(p.read_bytes() for p in run.glob("ledger/*.parquet")) == ledger
    assert not (run / "removing").exists()
