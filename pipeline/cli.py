"""The ``paircurate`` command: ``run`` the job on your lists, ``retry-failed`` what failed for
a passing reason, or ``demo`` it on a synthetic web."""

from __future__ import annotations

import argparse
import logging
import sys

from paircurate.pipeline.options import add_config_arguments
from paircurate.schemas.config import ConfigError
from paircurate.transforms.inputs import InputError

EPILOG = (
    "Any other flag is passed to Beam: e.g. --runner=DataflowRunner --project=... "
    "--region=..., or --direct_num_workers=2 --direct_running_mode=multi_processing "
    "for the local runner (the default: Beam's in-process FnApiRunner)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paircurate",
        description="Curate web image/alt-text pairs into WebDataset shards for CLIP training.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run the curation job on URL + caption lists", epilog=EPILOG
    )
    add_config_arguments(run)
    retry = commands.add_parser(
        "retry-failed",
        help="download again only a finished run's retryable failures (timeouts, 5xx, 429, "
        "connection errors) and merge them into its outputs",
        description="Rerun the job in DIR with the options stored in DIR/stats.json, "
        "downloading only the rows that failed for a reason that may pass; shards, ledger, "
        "sizes.json and stats.json are rewritten with the merged result.",
        epilog=EPILOG,
    )
    retry.add_argument("--output", required=True, metavar="DIR", help="the finished run's folder")
    demo = commands.add_parser(
        "demo",
        help="serve a synthetic web on 127.0.0.1 and run the whole job on it",
        epilog="Stage options of `run` also apply. " + EPILOG,
    )
    demo.add_argument("--output", required=True, help="folder for the demo's outputs")
    demo.add_argument("--pairs", type=int, default=1000, help="input rows to generate")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic web")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        from paircurate.pipeline.demo import run_demo, summary_text

        if args.command == "run":
            from paircurate.pipeline.run import run

            stats = run(argv[1:])
        elif args.command == "retry-failed":
            from paircurate.pipeline.retry import retry_failed

            stats = retry_failed(args.output, rest)
        else:
            stats = run_demo(args.output, args.pairs, args.seed, rest)
        print(summary_text(stats, args.output))
    except (ConfigError, InputError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
