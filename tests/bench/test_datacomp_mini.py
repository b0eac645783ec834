"""bench/datacomp_mini.py: its variants are what ``paircurate run`` makes, its tables add up."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "datacomp_mini.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("datacomp_mini", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_timing_line_sums_each_part_and_gives_medians(bench) -> None:
    timings: dict[str, list[float]] = {}
    with bench.timed(timings, "pool"):
        pass
    timings["train"] = [10.0, 30.0, 12.0]
    line = bench.timing_line(timings, 99.4)
    assert line.startswith("time: pool 0 s; train 52 s (3 runs, median 12 s)")
    assert line.endswith("; 99 s in all")


def test_spread_is_mean_and_sample_stdev(bench) -> None:
    assert bench.spread([0.1, 0.3]) == "0.200 ± 0.141"
    assert bench.spread([0.25]) == "0.250 ± 0.000"


def test_variants_differ_only_in_their_filters(bench) -> None:
    assert set(bench.VARIANTS) == {"none", "basic", "dedup", "clip_threshold", "clip_top30", "all"}
    assert bench.VARIANTS["none"] == bench.NO_CAPTION_RULES + bench.NO_DEDUP + bench.NO_CLIP
    assert "--clip-keep-fraction" in bench.VARIANTS["clip_top30"]
    assert bench.VARIANTS["basic"][-2:] == ["--clip-model", "none"]


def _decisions(run_dir: Path) -> dict[str, str]:
    """uid -> kept, or the drop reason."""
    ledger = pq.read_table(run_dir / "ledger", columns=["uid", "status", "reason"]).to_pylist()
    return {row["uid"]: row["reason"] or row["status"] for row in ledger}


@pytest.mark.slow
def test_a_variant_curated_from_the_shared_mirror_equals_a_direct_run(bench, tmp_path) -> None:
    """The rendered-once pool serves the bytes a fresh web does: same ledger, uid for uid.

    Both runs read the same manifest from the same port: uids hash the URL, and the
    near-duplicate keeper is chosen by uid.
    """
    ledgers, port, manifest = [], 0, str(tmp_path / "pool.parquet")
    for name in ("mirror", "direct"):
        web = SyntheticWeb(200, seed=5, mix=WebMix())
        if name == "mirror":
            assert web.mirror(processes=2) > 0
        with SyntheticWebServer(web, port=port, slow_seconds=8) as server:
            if name == "mirror":
                write_manifest(web, server.base_url, manifest)
                port = int(server.base_url.rsplit(":", 1)[1])
            stats = bench.curate("all", manifest, tmp_path / name)
        ledgers.append(_decisions(tmp_path / name))
        assert 0 < stats["kept"] < 200
    mirrored, direct = ledgers
    assert len(mirrored) == 200
    assert mirrored == direct
    assert {"kept", "language", "near_duplicate", "clip_below_threshold"} <= set(direct.values())


def test_background_task_reads_the_colour_name_on_web_backgrounds(bench, tmp_path) -> None:
    sets = {"random": tmp_path / "r", "neutral": tmp_path / "n"}
    assert bench.zeroshot_args("background", sets, "neutral") == [
        "--zeroshot", str(tmp_path / "r"), "--class-field", "json.background",
        "--classnames", str(tmp_path / "r" / "background-classes.json"),
    ]  # fmt: skip
    assert bench.zeroshot_args("colour", sets, "neutral") == [
        "--zeroshot", str(tmp_path / "n"), "--task", "colour",
    ]  # fmt: skip
    assert bench.zeroshot_args("shape", sets, "random")[1] == str(tmp_path / "r")


def test_table_has_a_line_per_variant_with_spreads(bench) -> None:
    args = bench.parse_args(["--samples-seen", "500"])
    rows = [
        {"variant": "none", "pairs": 9, "top1": [0.5, 0.7], "colour": [0.1, 0.1], "recall5": [0.2]},
        {"variant": "all", "pairs": 0, "top1": [], "colour": [], "recall5": []},
    ]
    lines = bench.table(rows, args).splitlines()
    assert lines[0].startswith("| variant | pairs | samples seen | zero-shot top-1 (background)")
    assert lines[2] == "| none | 9 | 500 | 0.600 ± 0.141 | 0.100 ± 0.000 | 0.200 ± 0.000 |"
    assert lines[3] == "| all | 0 | 500 | — | — | — |"
