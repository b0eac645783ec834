"""The synthetic web: seeded image/caption pairs with ground truth, served on 127.0.0.1.

Tests, the demo and the benchmarks use it instead of the internet::

    web = SyntheticWeb(1000, seed=0)
    with SyntheticWebServer(web) as server:
        write_manifest(web, server.base_url, "pairs.parquet")
        ...  # run the pipeline on pairs.parquet
"""

from .manifest import MANIFEST_SCHEMA, write_manifest
from .server import SyntheticWebServer
from .web import LABELS, SyntheticWeb, WebEntry, WebMix, WebResponse, label_counts

__all__ = [
    "LABELS",
    "MANIFEST_SCHEMA",
    "SyntheticWeb",
    "SyntheticWebServer",
    "WebEntry",
    "WebMix",
    "WebResponse",
    "label_counts",
    "write_manifest",
]
