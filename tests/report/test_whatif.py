"""The preview streamed over a ledger equals the job's rules applied to every row at once.

The ledgers here are written by hand; a row-by-row oracle applies the job's
functions (``judge_score``, ``decide_caption_cluster``, the language rule) to
the whole ledger held in memory. The streamed preview must give the same
counts whatever its batch size, number of ledger files or cluster partitions.
The preview against a real rerun of the job is tests/pipeline/test_preview.py.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.report import order, whatif
from paircurate.report.data import open_outputs
from paircurate.report.stream import ledger_files
from paircurate.report.threshold_table import threshold_table
from paircurate.report.uids import partition_of, uid_keys
from paircurate.schemas.config import ClipConfig, InputConfig, JobConfig
from paircurate.schemas.records import ledger_schema, rows_to_table
from paircurate.transforms.dedup.decide import decide_caption_cluster, ledger_member
from paircurate.transforms.output.revise import Revision, category, revised_config
from paircurate.transforms.scoring.clip_filter import cut_rank, judge_score

RUN = JobConfig(
    inputs=InputConfig(input=("in.parquet",)),
    clip=ClipConfig(clip_model="ref", clip_threshold=0.2),
)
LANGUAGES = ("en", "de", "fr", "nolang")


def uid(n: int) -> str:
    return f"{(n * 0x9E3779B97F4A7C15) % (1 << 64):016x}{n:016x}"


def make_ledger(rows: int = 400, seed: int = 5) -> list[dict]:
    """Rows the way a run with --clip-threshold 0.2 and the pair rule would record them."""
    rng = np.random.default_rng(seed)
    ledger = []
    for n in range(rows):
        row = {"uid": uid(n), "url": f"http://h/{n}.jpg", "caption": f"caption {n}",
               "language": str(rng.choice(LANGUAGES)), "chunk": n % 3}  # fmt: skip
        kind = rng.random()
        if kind < 0.1:
            row["reason"] = "caption_too_short"
        elif kind < 0.2:
            row["reason"] = "download_http_404"
        elif kind < 0.3 and n > 10:
            row["reason"], row["duplicate_of"] = "url_duplicate", uid(int(rng.integers(0, n)))
        else:
            row.update(image(rng, n))
        ledger.append(row)
    add_clusters(ledger, rng)
    for row in ledger:
        if row.get("clip_score") is not None and row.get("reason") is None:
            row.update(judge_score(row, RUN.clip))
        row.setdefault("reason", None)
    return ledger


def image(rng: np.random.Generator, n: int) -> dict:
    return {
        "clip_score": float(np.float32(rng.normal(0.25, 0.05))),
        "original_width": int(rng.integers(50, 500)),
        "original_height": 100,
        "phash": f"{int(rng.integers(0, 1 << 63)):016x}",
        "image_format": "jpg",
    }


def add_clusters(ledger: list[dict], rng: np.random.Generator) -> None:
    """Caption clusters of 2-6 imaged rows; in every third one the images are one image too."""
    imaged = [row for row in ledger if row.get("phash")]
    rng.shuffle(imaged)
    start = 0
    for number in range(12):
        members = imaged[start : start + int(rng.integers(2, 7))]
        start += len(members)
        root = min(row["uid"] for row in members)
        for row in members:
            row["caption_cluster"] = root
            if number % 3 == 0:
                row["image_cluster"] = root
        decided = decide_caption_cluster([ledger_member(r) for r in members], RUN.dedup)
        by_uid = {row["uid"]: row for row in members}
        for decision in decided:
            fields = ("reason", "duplicate_of", "cluster_id")
            by_uid[decision["uid"]].update({name: decision[name] for name in fields})


def write(ledger: list[dict], folder, parts: int = 3) -> None:
    (folder / "ledger").mkdir(parents=True)
    schema = ledger_schema()
    for part in range(parts):
        rows = ledger[part::parts]
        pq.write_table(rows_to_table(rows, schema), folder / "ledger" / f"part-{part:05d}.parquet")


# -- the oracle: the job's rules over the whole ledger in memory ----------------------------------


def oracle(ledger: list[dict], revision: Revision) -> Counter:
    new = revision.new
    after = {}
    for row in ledger:
        if category(row["reason"]) > 1 and not new.caption.keeps_language(row["language"]):
            after[row["uid"]] = "language"
    dropped = set(after)
    kept_language = [row for row in ledger if row["uid"] not in dropped]
    scores = sorted(r["clip_score"] for r in kept_language if r.get("clip_score") is not None)
    fraction = new.clip.clip_keep_fraction
    cut = scores[cut_rank(len(scores), fraction)] if fraction else None
    clusters: dict[str, list[dict]] = {}
    for row in kept_language:
        reason = row["reason"]
        if row.get("caption_cluster") and (reason is None or category(reason) >= 6):
            clusters.setdefault(row["caption_cluster"], []).append(row)
        elif reason == "url_duplicate" and row["duplicate_of"] in dropped:
            after[row["uid"]] = "kept_copy_dropped"
        elif reason in (None, "clip_below_threshold"):
            after[row["uid"]] = judge_score({**row, "reason": None}, new.clip, cut).get("reason")
    for members in clusters.values():
        found = decide_caption_cluster([ledger_member(r) for r in members], new.dedup)
        by_uid = {row["uid"]: row for row in members}
        for decision in found:
            row = {**by_uid[decision["uid"]], "reason": decision["reason"]}
            after[row["uid"]] = decision["reason"] or judge_score(row, new.clip, cut).get("reason")
    return Counter(
        (row["reason"], after.get(row["uid"], row["reason"]), row["language"]) for row in ledger
    )


CHANGES = {
    "thresholds": {"clip": {"clip_threshold_by_lang": ("en=0.27", "default=0.22")}},
    "top fraction": {"clip": {"clip_keep_fraction": 0.3}},
    "cluster cap": {"dedup": {"caption_cluster_cap": 1}},
    "caption repeats": {"dedup": {"drop_caption_repeats": True}},
    "languages": {"caption": {"languages": ("en", "fr")}, "clip": {"clip_threshold": 0.25}},
}


@pytest.fixture(scope="module")
def ledger() -> list[dict]:
    return make_ledger()


@pytest.fixture(scope="module")
def run_folder(ledger, tmp_path_factory):
    folder = tmp_path_factory.mktemp("whatif") / "run"
    write(ledger, folder)
    return folder


def streamed(folder, revision: Revision, batch_rows: int = 65_536) -> whatif.Preview:
    outputs = open_outputs(str(folder), FILES)
    return whatif.preview(ledger_files(outputs, batch_rows), revision)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_preview_equals_the_rules_over_the_whole_ledger(ledger, run_folder, name, monkeypatch):
    revision = Revision(RUN, revised_config(RUN, CHANGES[name]))
    expected = oracle(ledger, revision)
    assert any(old != new for old, new, _ in expected)  # the change changes something
    assert streamed(run_folder, revision).counts == expected
    monkeypatch.setattr(whatif, "MEMBERS_PER_PASS", 5)  # clusters over several passes
    assert streamed(run_folder, revision, batch_rows=17).counts == expected


def test_nothing_changed_gives_the_runs_own_counts(ledger, run_folder):
    revision = Revision(RUN, revised_config(RUN, {"dedup": {"caption_cluster_cap": 0}}))
    result = streamed(run_folder, dataclasses.replace(revision))
    assert revision.dedup_changed is False and result.exact
    assert result.by_status(1) == result.by_status(0)
    assert all(old == new for old, new, _ in result.counts)


def test_the_preview_reports_the_cut_the_edges_and_the_histogram(ledger, run_folder):
    revision = Revision(RUN, revised_config(RUN, CHANGES["top fraction"]))
    result = streamed(run_folder, revision)
    scores = sorted(row["clip_score"] for row in ledger if row.get("clip_score") is not None)
    assert result.cut == scores[cut_rank(len(scores), 0.3)]
    assert result.cut_source == "computed"
    assert all(row["clip_score"] >= result.cut for row in result.just_kept)
    assert all(row["clip_score"] < result.cut for row in result.just_dropped)
    assert len(result.just_kept) == whatif.EDGE_SAMPLES
    margins = [row["clip_score"] for row in result.just_kept]
    assert margins == sorted(margins)
    series = result.histogram["series"]
    assert sum(map(sum, series.values())) == len(scores)
    assert sum(series["kept"]) == result.by_status(1)["kept"]


def test_order_statistics_are_exact():
    values = np.random.default_rng(1).normal(0.3, 0.1, 10_000).astype(np.float32)
    values[:50] = -values[:50]
    counts = order.BucketCounts()
    for part in np.array_split(values, 7):
        counts.add(part)
    ranks = [0, 1, 4999, 9998, 9999]
    found = order.values_at_ranks(counts, ranks, iter(np.array_split(values, 3)))
    assert found == {rank: float(np.sort(values)[rank]) for rank in ranks}


def test_uid_keys_use_every_digit_and_spread_over_partitions():
    uids = [f"{n:032x}" for n in range(1000)] + [None]  # small numbers: equal first halves
    keys = uid_keys(pa.array(uids))
    assert len(set(keys[:-1].tolist())) == 1000 and keys[-1] == 0
    assert (uid_keys(pa.array(uids[:5])) == keys[:5]).all()  # a key does not depend on the batch
    counts = np.bincount(partition_of(keys[:-1], 4))
    assert counts.min() > 200  # about a quarter each


def test_the_reports_threshold_table_is_what_preview_keeps(run_folder):
    files = ledger_files(open_outputs(str(run_folder), FILES))
    table = threshold_table(files, (0.2,))
    assert {row.kind for row in table} == {"threshold", "top fraction"}
    assert any(row.kind == "threshold" and row.value == 0.2 for row in table)
    for row in table:
        if row.kind == "threshold":
            changes = {"clip": {"clip_threshold": row.value}}
        else:
            changes = {"clip": {"clip_threshold": -1.0, "clip_keep_fraction": row.value}}
        result = streamed(run_folder, Revision(RUN, revised_config(RUN, changes)))
        assert row.kept == result.by_status(1)["kept"], (row.kind, row.value)
        if row.kind == "top fraction":
            assert row.score == result.cut
