"""``paircurate index`` and ``search`` on a scored run of the synthetic web (reference scorer)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from conftest import run_job_on, shard_files

from paircurate.pipeline.cli import main
from paircurate.transforms.embeddings.provenance import FILE_NAME, PARQUET_KEY, STATS_KEY
from paircurate.transforms.scoring import reference_scorer

pytestmark = pytest.mark.slow
K = 5


@pytest.fixture(scope="module")
def indexed_run(manifest, tmp_path_factory) -> Path:
    """The session web scored with embeddings written, in several shards, then indexed."""
    output = tmp_path_factory.mktemp("search") / "out"
    run_job_on(manifest, output, "--write-embeddings", keep="truth_label,truth_scene")
    assert main(["index", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def colours(indexed_run, web) -> dict[str, str]:
    """Each kept image's colour, as the synthetic web's ground truth says (uid -> colour)."""
    rows = [
        row
        for tar in shard_files(indexed_run, ".parquet")
        for row in pq.read_table(tar).to_pylist()
    ]
    return {row["uid"]: web.scene(row["truth_scene"]).colour for row in rows}


def search(capsys, output: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["search", str(output), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_uids(out: str) -> list[str]:
    return re.findall(r"^\s+\d+\s+[-\d.]+\s+([0-9a-f]{32})\s", out, re.MULTILINE)


def test_the_run_records_what_made_its_embeddings(indexed_run):
    stats = json.loads((indexed_run / "stats.json").read_text())
    record = stats[STATS_KEY]
    assert record["model"] == "paircurate-ref" and record["stored_precision"] == "float16"
    assert json.loads((indexed_run / "embeddings" / FILE_NAME).read_text()) == record
    for parquet in shard_files(indexed_run, ".parquet"):
        stored = pq.read_schema(parquet).metadata[PARQUET_KEY]
        assert json.loads(stored) == record
    index_info = json.loads((indexed_run / "index" / "index.json").read_text())
    assert index_info["provenance"] == record and index_info["shards"] > 1


def test_a_caption_finds_the_images_labelled_with_what_it_says(indexed_run, colours, capsys):
    common = [colour for colour, n in Counter(colours.values()).most_common() if n >= 2 * K][:3]
    assert common, "the web has no colour shown by enough kept images"
    precision = {}
    for colour in common:
        status, out, _ = search(capsys, indexed_run, f"a photo of {colour} shapes", "-k", str(K))
        assert status == 0, out
        uids = table_uids(out)
        assert len(uids) == K
        precision[colour] = sum(colours[uid] == colour for uid in uids) / K
        assert colours[uids[0]] == colour, (colour, out)  # the best hit shows what was asked
    share = {c: n / len(colours) for c, n in Counter(colours.values()).items()}
    assert min(precision.values()) >= 0.6, precision
    assert all(precision[c] > 2 * share[c] for c in common), (precision, share)


def test_an_image_finds_itself_first(indexed_run, web, capsys, tmp_path):
    """The picture as the web serves it finds the row the run made of it, ahead of every other.

    The run stored a resized, re-encoded copy, so the similarity is high but not 1:
    across the web's rows it lies between about 0.95 and 1.
    """
    parquet = shard_files(indexed_run, ".parquet")[1]
    rows = pq.read_table(parquet).to_pylist()
    for place in (3, len(rows) - 1):
        row = rows[place]
        query = tmp_path / f"query-{place}.{row['image_format']}"
        query.write_bytes(web.image_bytes(row["row_number"]))
        status, out, _ = search(capsys, indexed_run, "--image", str(query), "-k", "3")
        assert status == 0
        assert table_uids(out)[0] == row["uid"], out
        first, second = (line.split() for line in out.splitlines()[1:3])
        assert first[0] == "1" and first[3] == f"{parquet.stem}/{place}", out
        assert float(first[1]) > 0.93 and float(first[1]) > float(second[1]), out


def test_the_page_holds_thumbnails_captions_and_uids_and_requests_nothing(indexed_run, capsys):
    status, out, _ = search(capsys, indexed_run, "two green circles", "-k", str(K))
    assert status == 0
    page_path = Path(out.strip().splitlines()[-1].removeprefix("page:").strip())
    assert page_path == indexed_run / "search" / "two-green-circles.html"
    page = page_path.read_text()
    uids = table_uids(out)
    figures = re.findall(
        r'<figure class="sample" data-uid="([0-9a-f]{32})">(.*?)</figure>', page, re.S
    )
    assert [uid for uid, _ in figures] == uids
    rows = {
        row["uid"]: row
        for parquet in shard_files(indexed_run, ".parquet")
        for row in pq.read_table(parquet).to_pylist()
    }
    for uid, figure in figures:
        assert re.search(r'<img src="data:image/webp;base64,[A-Za-z0-9+/=]+"', figure)
        caption = re.search(r'<div class="caption">(.*?)</div>', figure, re.S).group(1)
        assert caption == escape(rows[uid]["caption"])
    # No request: no remote source, stylesheet, script, font or frame anywhere in the page.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page, re.I)
    assert not re.search(
        r"url\(\s*['\"]?(https?:)?//|@import|<script|<iframe|<link[^>]+stylesheet", page, re.I
    )


def escape(text: str) -> str:
    from markupsafe import escape as markup_escape

    return str(markup_escape(text))


def test_a_query_model_other_than_the_embeddings_one_is_refused(indexed_run, capsys, tmp_path):
    """Other weights for the same architecture: the checkpoint's sha256 tells them apart."""
    state = torch.load(reference_scorer.CHECKPOINT_PATH, map_location="cpu", weights_only=False)
    weights = state.get("state_dict", state)
    name = next(key for key, value in weights.items() if value.is_floating_point())
    weights[name] = weights[name] + 0.01
    other = tmp_path / "retrained.pt"
    torch.save(state, other)
    status, out, err = search(
        capsys, indexed_run, "red squares", "--model", "paircurate-ref", "--checkpoint", str(other)
    )
    assert status == 2 and out == ""
    assert f"the embeddings of {indexed_run} were made by paircurate-ref (checkpoint sha256" in err
    assert "but the query model is paircurate-ref (checkpoint sha256" in err
    assert "they differ in checkpoint_sha256" in err


def test_search_before_index_and_bad_queries_are_clear_errors(indexed_run, capsys, tmp_path):
    status, _, err = search(capsys, indexed_run, "red", "--index-dir", str(tmp_path))
    assert status == 2 and "build it first with `paircurate index RUN_DIR`" in err
    status, _, err = search(capsys, indexed_run)
    assert status == 2 and "give a caption or --image PATH" in err
    status, _, err = search(capsys, indexed_run, "--image", str(tmp_path / "none.jpg"))
    assert status == 2 and "no such file" in err
