"""The report's contamination section: pool images dropped as near-copies of evaluation images.

Each pair shows the pool image (from its chunk's raw shard, as the sample
grids find dropped images) beside the evaluation image it matched, read from
the evaluation set the ledger's ``compliance_match`` names: ``TAR:MEMBER``, an
image file, or a URL (evaluation sets given as Parquet have no image to show).
"""

from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass

import pyarrow.compute as pc

from paircurate.report.data import Outputs
from paircurate.report.samples import DETAIL_COLUMNS, Sample, add_thumbnails, thumbnail_uri
from paircurate.report.stream import LedgerFiles
from paircurate.transforms.output.storage import Files

log = logging.getLogger(__name__)

MAX_PAIRS = 48
COLUMNS = (*DETAIL_COLUMNS, "compliance_match")


@dataclass
class ContaminatedPair:
    """A dropped pool pair and the evaluation image it near-copies."""

    pool: Sample
    eval_name: str
    eval_thumbnail: str | None = None
    eval_note: str = "thumbnails left out"


@dataclass
class Contamination:
    rows: int = 0
    pairs: list[ContaminatedPair] | None = None


def find_pairs(ledger: LedgerFiles) -> Contamination:
    """How many rows were dropped as eval_contamination, and the first MAX_PAIRS of them."""
    found = Contamination(pairs=[])
    for _, _, batch in ledger.batches(COLUMNS):
        chosen = batch.filter(pc.equal(batch["reason"], "eval_contamination"))
        found.rows += chosen.num_rows
        for row in chosen.to_pylist()[: MAX_PAIRS - len(found.pairs)]:
            found.pairs.append(ContaminatedPair(Sample(row), row.get("compliance_match") or ""))
    return found


def eval_image(files: Files, name: str) -> bytes | None:
    """The bytes of an evaluation image by its name in the ledger, or None."""
    path, sep, member = name.rpartition(".tar:")
    try:
        if sep:
            with files.open_read(path + ".tar") as stream, tarfile.open(fileobj=stream) as tar:
                handle = tar.extractfile(member)
                return handle.read() if handle is not None else None
        if "://" in name and not files.exists(name):
            return None
        with files.open_read(name) as stream:
            return stream.read()
    except (OSError, KeyError, tarfile.TarError) as error:
        log.warning("report: cannot read evaluation image %s: %s", name, error)
        return None


def collect_contamination(
    outputs: Outputs, files: Files, ledger: LedgerFiles, raw_shards: str | None, images: bool
) -> Contamination:
    found = find_pairs(ledger)
    if images and found.pairs:
        add_thumbnails(outputs, [pair.pool for pair in found.pairs], raw_shards)
        for pair in found.pairs:
            data = eval_image(files, pair.eval_name)
            pair.eval_thumbnail = thumbnail_uri(data) if data else None
            pair.eval_note = "" if pair.eval_thumbnail else "the evaluation image is not readable"
    return found
