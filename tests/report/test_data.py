"""The quality report of hand-built outputs: counts, thresholds, samples, escaping, empty states."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from paircurate.pipeline.filesystem import FILES
from paircurate.report import data
from paircurate.report.aggregates import collect
from paircurate.report.page import SECTIONS, render, threshold_text
from paircurate.schemas.codes import REASONS
from paircurate.schemas.records import ledger_schema, rows_to_table
from paircurate.transforms.output.storage import arrow_filesystem
from paircurate.transforms.output.store import OutputLayout


def collect_from(output_dir: str, **options):
    """The report's data, read through the job's filesystem layer as ``paircurate report`` does."""
    return collect(output_dir, files=FILES, **options)


HOSTILE = '<script>alert("caption")</script><img src=x onerror=alert(1)>'


def row(index: int, reason: str | None = None, **extra) -> dict:
    status = "kept" if reason is None else REASONS[reason].status.value
    uid = f"{index:032x}"
    values = {
        "uid": uid,
        "url": f"http://127.0.0.1/{index}.jpg",
        "caption": f"a photo number {index}",
        "language": "en",
        "status": status,
        "reason": reason,
        "chunk": index % 2,
    }
    if reason is None:
        values.update(shard=f"{index % 2:05d}", key=uid)
    return {**values, **extra}


def image_bytes(color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(buffer, "JPEG")
    return buffer.getvalue()


def write_tar(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name in names:
            payload = image_bytes() if name.endswith(".jpg") else b"{}"
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def write_outputs(folder: Path, rows: list[dict], options: dict | None = None) -> Path:
    """A run folder: the ledger in two parts (by chunk), stats.json, shard tars of kept rows."""
    schema = ledger_schema()
    for chunk in (0, 1):
        part = [r for r in rows if r.get("chunk", 0) == chunk]
        (folder / "ledger").mkdir(parents=True, exist_ok=True)
        pq.write_table(rows_to_table(part, schema), folder / "ledger" / f"part-{chunk:05d}.parquet")
        kept = [r for r in part if r["status"] == "kept"]
        members = sorted(f"{r['key']}.{ext}" for r in kept for ext in ("jpg", "json"))
        write_tar(folder / "shards" / f"{chunk:05d}.tar", members)
    statuses = Counter(r["status"] for r in rows)
    stats = {
        "rows_in": len(rows),
        "kept": statuses["kept"],
        "status": {k: {"count": n, "share": n / len(rows)} for k, n in statuses.items()},
        "options": options or {"clip": {"clip_model": "paircurate-ref", "clip_threshold": 0.5}},
        "versions": {"paircurate": "0.1.0"},
        "duration_s": 2.0,
        "rows_per_s": len(rows) / 2.0,
        "stages": {"fetch": {"rows": len(rows), "busy_s": 1.5, "rows_per_busy_s": 10.0}},
    }
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def mixed_rows() -> list[dict]:
    rows = [row(i, clip_score=0.5 + i / 100, image_format="jpg", original_width=300 + i,
                original_height=200) for i in range(12)]  # fmt: skip
    rows += [row(100 + i, "clip_below_threshold", clip_score=0.2, image_format="jpg",
                 original_width=100, original_height=100,
                 reason_detail="CLIP score 0.2000 is below 0.5000 (--clip-threshold)")
             for i in range(4)]  # fmt: skip
    rows += [row(200 + i, "download_http_404") for i in range(3)]
    rows += [row(300, "caption_junk", caption=HOSTILE, url='javascript:alert("url")//<b>')]
    rows += [row(400, "near_duplicate", cluster_id=f"{0:032x}", image_format="jpg",
                 clip_score=0.9, original_width=300, original_height=200)]  # fmt: skip
    rows[0]["cluster_id"] = f"{0:032x}"
    return rows


def raw_store(folder: Path):
    return OutputLayout(FILES, str(folder)).raw_store("abc123")


@pytest.fixture
def mixed(tmp_path) -> Path:
    """A run whose dropped pairs' images lie in its raw shards (fetch/abc123, named in stats)."""
    rows = mixed_rows()
    folder = write_outputs(tmp_path / "run", rows)
    stats = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({**stats, "raw_shards": "fetch/abc123"}))
    raw = [f"{100 + i:032x}.jpg" for i in range(4)] + [f"{400:032x}.jpg"]
    store = raw_store(folder)
    for chunk in (0, 1):
        names = sorted(n for n in raw if int(n[:32], 16) % 2 == chunk)
        tar = store.write_tar(chunk, lambda w, ns=names: [w.add(n, image_bytes()) for n in ns])
        store.commit(chunk, [r for r in rows if r["chunk"] == chunk], ledger_schema(), tar)
    return folder


def test_funnel_counts_equal_the_ledger(mixed):
    report = collect_from(str(mixed))
    ledger = pq.read_table(mixed / "ledger").to_pylist()
    assert report.funnel.rows == len(ledger)
    assert report.funnel.by_status == {**dict.fromkeys(data.STATUSES, 0),
                                       **Counter(r["status"] for r in ledger)}  # fmt: skip
    found = {
        item["code"]: item["count"] for step in report.funnel.steps for item in step["reasons"]
    }
    assert found == Counter(r["reason"] for r in ledger if r["reason"])
    remaining = len(ledger)
    for step in report.funnel.steps:
        remaining -= step["removed"]
        assert step["remaining"] == remaining
    assert remaining == report.funnel.by_status["kept"]


def test_funnel_orders_steps_as_the_job_applies_them(tmp_path):
    rows = [row(1, "clip_below_threshold"), row(2, "url_duplicate"), row(3, "near_duplicate"),
            row(4, "download_timeout"), row(5)]  # fmt: skip
    report = collect_from(str(write_outputs(tmp_path, rows)), with_images=False)
    with_drops = [step["step"] for step in report.funnel.steps if step["removed"]]
    assert with_drops == ["url_dedup", "fetch", "clusters", "clip"]


def test_unknown_reason_codes_are_counted_as_other(tmp_path):
    rows = [row(1), {**row(2), "status": "dropped", "reason": "from_a_newer_version"}]
    report = collect_from(str(write_outputs(tmp_path, rows)), with_images=False)
    other = [step for step in report.funnel.steps if step["step"] == "other"]
    assert other and other[0]["reasons"][0]["code"] == "from_a_newer_version"


def test_thresholds_and_the_cut_come_from_stats(tmp_path):
    options = {"clip": {"clip_threshold": 0.2, "clip_threshold_by_lang": ["en=0.3", "default=0.25"],
                        "clip_keep_fraction": 0.5}}  # fmt: skip
    rows = [row(i, clip_score=0.4 + i / 100, image_format="jpg") for i in range(4)]
    rows += [row(9, "clip_below_threshold", clip_score=0.1, image_format="jpg",
                 reason_detail="CLIP score 0.1000 is below 0.4123 (top 0.5 cut)")]  # fmt: skip
    folder = write_outputs(tmp_path, rows, options)
    stats = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({**stats, "clip_keep_fraction_cut": 0.4123}))
    report = collect_from(str(folder), with_images=False)
    thresholds = report.thresholds
    assert (thresholds.absolute, thresholds.keep_fraction) == (0.2, 0.5)
    assert thresholds.by_language == {"en": 0.3, "default": 0.25}
    assert (thresholds.cut, thresholds.cut_source) == (0.4123, "stats")
    per_row = data.row_thresholds(np.array(["en", "de"], dtype=object), thresholds)
    assert per_row.tolist() == [0.4123, 0.4123]
    thresholds.cut = None
    assert data.row_thresholds(np.array(["en", "de"], dtype=object), thresholds).tolist() == [
        0.3,
        0.25,
    ]


def test_keep_fraction_cut_recorded_in_stats_wins(tmp_path):
    options = {"clip": {"clip_keep_fraction": 0.5}}
    rows = [row(i, clip_score=i / 10, image_format="jpg") for i in range(4)]
    rows += [row(9, "clip_below_threshold", clip_score=0.05, image_format="jpg",
                 reason_detail="CLIP score 0.0500 is below 0.3000 (top 0.5 cut)")]  # fmt: skip
    folder = write_outputs(tmp_path, rows, options)
    stats = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({**stats, "clip_keep_fraction_cut": 0.2975}))
    report = collect_from(str(folder), with_images=False)
    assert (report.thresholds.cut, report.thresholds.cut_source) == (0.2975, "stats")
    assert threshold_text(report) == ["--clip-keep-fraction 0.5 (cut at 0.2975)"]


def test_keep_fraction_cut_is_estimated_when_stats_records_none(tmp_path):
    options = {"clip": {"clip_keep_fraction": 0.25}}
    rows = [row(i, clip_score=i / 10, image_format="jpg") for i in range(9)]
    report = collect_from(str(write_outputs(tmp_path, rows, options)), with_images=False)
    assert report.thresholds.cut_source == "estimate"
    assert report.thresholds.cut == pytest.approx(np.quantile(np.arange(9) / 10, 0.75))
    assert threshold_text(report) == [
        "--clip-keep-fraction 0.25 (cut at 0.6000, estimated from the ledger's scores)"
    ]


def test_histogram_clips_extremes_into_the_last_bin():
    values = np.array([1.0, 2.0, 3.0, 1000.0, np.nan])
    groups = np.array(["a", "b", "a", "b", "a"], dtype=object)
    histogram = data.histogram(values, groups, bins=4, low=0.0, high=4.0)
    assert histogram.total == 4 and histogram.clipped == 1
    assert histogram.series["b"][-1] == 1
    assert data.histogram(np.array([np.nan])) is None


def test_samples_show_thumbnails_from_shards_and_raw_shards(mixed):
    report = collect_from(str(mixed))
    groups = {group.id: group for group in report.sample_groups}
    kept = groups["kept"].samples
    assert kept and all(s.thumbnail.startswith("data:image/webp;base64,") for s in kept)
    clip = groups["reason-clip_below_threshold"].samples
    assert len(clip) == 4 and all(s.thumbnail for s in clip)  # from the raw shards
    failed = groups["reason-download_http_404"].samples
    assert len(failed) == 3 and not any(s.thumbnail for s in failed)
    assert all(s.row["url"].startswith("http://") for s in failed)
    above = groups["above-threshold"].samples
    scores = [s.row["clip_score"] for s in above]
    assert scores == sorted(scores) and scores[0] == pytest.approx(0.5)


def test_a_missing_image_is_said_so_not_an_error(mixed):
    Path(raw_store(mixed).tar_of(0)).unlink()
    groups = {g.id: g for g in collect_from(str(mixed)).sample_groups}
    notes = {s.image_note for s in groups["reason-clip_below_threshold"].samples if not s.thumbnail}
    assert notes == {"image not found in the shards kept on disk"}


class ResourceFinder(HTMLParser):
    """Every script/style/link/img source the page would load."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("src", "href"):
            if tag in ("script", "link", "img", "iframe", "source") and values.get(name):
                self.sources.append(values[name])


def test_page_is_self_contained(mixed):
    page = render(collect_from(str(mixed)))
    finder = ResourceFinder()
    finder.feed(page)
    assert finder.sources and all(s.startswith("data:") for s in finder.sources)
    assert page.count("<script>") > 1  # plotly.js once, then a plot call per chart
    assert page.count("Plotly.newPlot") >= 5 and page.count("plotly.js v") == 1
    assert "cdn.plot.ly" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S)


def test_captions_and_urls_are_escaped(mixed):
    page = render(collect_from(str(mixed)))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#34;caption&#34;)&lt;/script&gt;" in page
    assert "<b>" not in page.split("</head>", 1)[1]
    assert "javascript:alert(&#34;url&#34;)//&lt;b&gt;" in page
    assert 'href="javascript' not in page


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [
                row(
                    i,
                    "clip_below_threshold",
                    clip_score=0.1,
                    image_format="jpg",
                    original_width=80,
                    original_height=80,
                )
                for i in range(5)
            ],
            id="zero-kept",
        ),  # fmt: skip
        pytest.param(
            [row(i, "download_http_404") for i in range(5)]
            + [row(9, "invalid_row", language=None, chunk=None)],
            id="all-failed",
        ),  # fmt: skip
    ],
)
def test_runs_without_kept_rows_render_with_empty_states(tmp_path, rows):
    report = collect_from(str(write_outputs(tmp_path, rows)))
    page = render(report)
    assert report.funnel.by_status["kept"] == 0
    for section, _ in SECTIONS:
        assert f'<section id="{section}">' in page
    assert 'class="chart empty"' in page
    groups = {g.id: g for g in report.sample_groups}
    assert groups["kept"].rows == 0 and not groups["kept"].samples
    assert "No rows in this group." in page


def test_a_folder_without_a_ledger_is_a_clear_error(tmp_path):
    with pytest.raises(data.ReportInputError, match="no ledger"):
        collect_from(str(tmp_path))


def test_rows_are_read_back_from_the_right_ledger_part(mixed):
    report = collect_from(str(mixed), with_images=False)
    for group in report.sample_groups:
        if group.id.startswith("reason-"):
            code = group.id.removeprefix("reason-")
            assert all(sample.row["reason"] == code for sample in group.samples)


def test_cluster_sizes_fall_in_power_of_two_buckets():
    from paircurate.report.aggregates import size_buckets

    labels, clusters, rows = size_buckets(np.array([1, 2, 2, 3, 4, 5, 9, 16]))
    assert labels == ["1", "2", "3–4", "5–8", "9–16"]
    assert clusters.tolist() == [1, 2, 2, 1, 2]
    assert rows.tolist() == [1, 4, 7, 5, 25]


def test_every_chart_is_drawn_for_a_run_with_data(mixed):
    from paircurate.report.figures import all_charts

    charts = all_charts(collect_from(str(mixed), with_images=False))
    assert [name for name, html in charts.items() if html is None] == []
    assert all(f'id="chart-{name}"' in html for name, html in charts.items())


@pytest.mark.parametrize("long_names", [False, True], ids=["ustar", "pax"])
def test_images_are_read_from_our_tars_and_from_any_other_tar(tmp_path, long_names):
    from paircurate.report.samples import read_images
    from paircurate.transforms.output.shards import TarWriter

    image = image_bytes()
    names = [f"{'d' * 120 if long_names else 'dir'}/{i:032x}.jpg" for i in range(3)]
    path = tmp_path / "00000.tar"
    with path.open("wb") as stream:
        if long_names:  # names over 100 bytes need pax headers
            with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in names:
                    info = tarfile.TarInfo(name)
                    info.size = len(image)
                    tar.addfile(info, io.BytesIO(image))
        else:
            writer = TarWriter(stream)
            for name in names:
                writer.add(name, image)
                writer.add(name.replace(".jpg", ".json"), b"{}")
            writer.close()
    root = str(tmp_path)
    outputs = data.Outputs(arrow_filesystem(FILES), root, OutputLayout(FILES, root))
    wanted = {f"{i:032x}" for i in (0, 2)} | {"missing"}
    assert read_images(outputs, str(path), wanted) == {f"{i:032x}": image for i in (0, 2)}


def test_language_counts_equal_the_ledger(mixed):
    report = collect_from(str(mixed), with_images=False)
    ledger = pq.read_table(mixed / "ledger").to_pylist()
    expected = Counter((r["language"], r["status"]) for r in ledger)
    found = {(lang, s): n for lang, by in report.languages.items() for s, n in by.items() if n}
    assert found == expected


def test_an_empty_ledger_renders(tmp_path):
    report = collect_from(str(write_outputs(tmp_path, [])))
    page = render(report)
    assert report.funnel.rows == 0 and "The ledger is empty." in page
