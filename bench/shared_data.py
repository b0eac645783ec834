"""Where the benchmarks find the real captions of ../shared/data, and how they read them."""

from __future__ import annotations

import os
from pathlib import Path

# ../shared/data beside the checkout, or the folder PAIRCURATE_SHARED_DATA names.
DATA = Path(
    os.environ.get("PAIRCURATE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def data_file(name: str) -> Path:
    """A file of the shared data folder; a clear exit where a checkout has none."""
    path = DATA / name
    if not path.is_file():
        raise SystemExit(f"{path} not found: this benchmark needs the shared data folder")
    return path


def cc3m_captions() -> list[str]:
    """The 15,833 Conceptual Captions validation captions (first column of the TSV)."""
    with open(data_file("cc3m_val_captions.tsv"), encoding="utf-8") as stream:
        return [line.split("\t", 1)[0] for line in stream if line.strip()]
