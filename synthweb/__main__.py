"""Write a manifest and serve the synthetic web until Ctrl-C.

python -m paircurate.synthweb --pairs 10000 --seed 0 --manifest /tmp/pairs.parquet

Or write a labelled, held-out evaluation set (see evalset.py) and exit:

python -m paircurate.synthweb evalset --out /tmp/evalset --images 1200 --seed 0
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from .manifest import write_manifest
from .server import SyntheticWebServer
from .web import SyntheticWeb, WebMix


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m paircurate.synthweb", description=__doc__)
    parser.add_argument("--pairs", type=int, required=True, help="number of rows in the web")
    parser.add_argument("--seed", type=int, default=0, help="webs of different seeds differ")
    parser.add_argument(
        "--manifest",
        required=True,
        help="output file; format from the name: .parquet, .csv, .tsv, .jsonl (+ .gz)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=0, help="port to serve on; 0 picks a free one")
    parser.add_argument(
        "--slow-seconds", type=float, default=5.0, help="stall of rows labelled slow"
    )
    parser.add_argument(
        "--clean-only", action="store_true", help="no noisy rows: every pair is clean"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["evalset"]:
        from .evalset import main as evalset_main

        return evalset_main(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mix = WebMix.clean_only() if args.clean_only else WebMix()
    web = SyntheticWeb(args.pairs, seed=args.seed, mix=mix)
    server = SyntheticWebServer(web, args.host, args.port, args.slow_seconds)
    with server:
        write_manifest(web, server.base_url, args.manifest)
        print(f"{args.pairs} pairs at {server.base_url}; manifest {args.manifest}", flush=True)
        print("serving until Ctrl-C", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"stopping after {server.requests_served} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
