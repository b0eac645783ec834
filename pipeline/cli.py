"""The ``paircurate`` command: ``run`` the job on your lists, ``retry-failed`` what failed for
a passing reason, ``demo`` it on a synthetic web, ``report`` on a finished run, ``eval``
a CLIP model (zero-shot classification and retrieval), ``index`` and ``search`` a run's
images by caption or by image, ``remove`` what removal lists match from a finished run,
``preview`` what a run keeps under other thresholds, or ``extract`` the pairs of a crawl's
WAT or WARC files.

``run``, ``retry-failed`` and ``demo`` end by writing DIR/report.html. If that
fails, the job's outputs stay complete, the error is logged with the command
that makes the report again, and the exit status is 1 (bad options: 2).
"""

from __future__ import annotations

import argparse
import sys

from paircurate.pipeline import eval_command, preview_command, search_command
from paircurate.pipeline.eval_command import add_eval_arguments
from paircurate.pipeline.extract.command import add_extract_arguments
from paircurate.pipeline.logs import configure_logging
from paircurate.pipeline.options import add_config_arguments
from paircurate.pipeline.remove_command import add_remove_arguments
from paircurate.schemas.config import ConfigError
from paircurate.transforms.ingest.inputs import InputError

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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="also print other libraries' INFO logs (open_clip, Beam, urllib3, torch ...)",
    )
    run = commands.add_parser(
        "run",
        help="run the curation job on URL + caption lists",
        epilog=EPILOG,
        parents=[common],
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
        parents=[common],
    )
    retry.add_argument("--output", required=True, metavar="DIR", help="the finished run's folder")
    extract = commands.add_parser(
        "extract",
        help="extract image/alt-text pairs from WAT or WARC files (Common Crawl's) into Parquet",
        description="Read WAT or WARC files (globs, folders or a paths list such as "
        "wat.paths.gz with --crawl-prefix) and write DIR/pairs/ (the input of `run`), "
        "DIR/extract_ledger/ (every candidate <img> with its reason) and DIR/stats.json. "
        "See docs/extract.md.",
        epilog=EPILOG,
        parents=[common],
    )
    add_extract_arguments(extract)
    demo = commands.add_parser(
        "demo",
        help="serve a synthetic web on 127.0.0.1 and run the whole job on it",
        epilog="Stage options of `run` also apply. " + EPILOG,
        parents=[common],
    )
    demo.add_argument("--output", required=True, help="folder for the demo's outputs")
    demo.add_argument("--pairs", type=int, default=1000, help="input rows to generate")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic web")
    demo.add_argument(
        "--from-crawl",
        action="store_true",
        help="write the web's pages as WARC files and run the job from them (extract first)",
    )
    report = commands.add_parser(
        "report",
        help="write DIR/report.html, the quality report of a finished run",
        description="Read a finished run's ledger, stats.json and a few sampled images and write "
        "DIR/report.html: one self-contained page (funnel, CLIP scores, languages, captions, "
        "image sizes, duplicate clusters, sample grids, run details) that opens offline.",
        parents=[common],
        epilog="Beam's filesystem options (e.g. --s3_endpoint_url, --s3_region_name) are passed "
        "on, for outputs on an object store.",
    )
    report.add_argument(
        "output", metavar="DIR", nargs="?", help="the --output folder of a finished run"
    )
    report.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="instead, write one page comparing two finished runs side by side: funnel, "
        "reasons, languages, CLIP scores and the rows whose status changed, with samples",
    )
    report.add_argument(
        "--html",
        default="",
        metavar="FILE",
        help="where the --compare page goes (default: RUN_B/compare.html)",
    )
    report.add_argument(
        "--no-images",
        dest="images",
        action="store_false",
        help="leave thumbnails out of the sample grids (reads no tar files)",
    )
    report.add_argument(
        "--runs-table",
        default="",
        metavar="FOLDER",
        help="also add the run's row to the runs table in FOLDER (as --runs-table on `run` "
        "does), e.g. for a run made without it",
    )
    evaluate = commands.add_parser(
        "eval",
        help="zero-shot classification and image-text retrieval of an open_clip model",
        description="Evaluate an open_clip model (name and tag, hf-hub: id, checkpoint or "
        "paircurate-ref) by zero-shot classification of a labelled image set and image-text "
        "retrieval on captioned pairs; writes a JSON result.",
        parents=[common],
    )
    add_eval_arguments(evaluate)
    index = commands.add_parser(
        "index",
        help="build a nearest-neighbour index over a run's image embeddings",
        description="Build DIR/index/ from a run's --write-embeddings image embeddings, shard "
        "by shard (faiss IVF trained on a sample, per-shard parts merged on disk).",
        parents=[common],
    )
    search_command.add_index_arguments(index)
    search = commands.add_parser(
        "search",
        help="find a run's images nearest to a caption or an image",
        description="Embed a caption (or --image) with the model that made the run's embeddings, "
        "print the nearest images and write a self-contained HTML page of them.",
        parents=[common],
    )
    search_command.add_search_arguments(search)
    remove = commands.add_parser(
        "remove",
        help="take what removal lists (or a published diff) match out of a finished run, "
        "without downloading anything",
        description="Match removal lists (url, domain, sha256, md5, sha1, phash, pdq) against "
        "a finished run, take the matches out of its shards, Parquet, ledger, raw shards and "
        "embeddings as a new version of the run, and publish RUN/removed.parquet; --diff applies "
        "such a file to a copy of the run. The report and card are written again.",
        epilog=EPILOG,
        parents=[common],
    )
    add_remove_arguments(remove)
    preview = commands.add_parser(
        "preview",
        help="what a finished run keeps under other CLIP thresholds, languages or caption "
        "cluster rules, from its ledger alone",
        description="Apply the job's own rules with the options given to a finished run's "
        "ledger: counts by status, reason and language before and after, the rows that change, "
        "the CLIP score histogram with the new cut and the pairs closest to it. Nothing is "
        "downloaded, scored or written.",
        parents=[common],
        epilog="Beam's filesystem options (e.g. --s3_endpoint_url) are passed on, for runs on "
        "an object store.",
    )
    preview_command.add_preview_arguments(preview)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    configure_logging(args.verbose)
    argv = [arg for arg in argv if arg != "--verbose"]
    if args.command == "eval":
        if rest:
            parser.error(f"eval takes no other arguments: {' '.join(rest)}")
        return eval_command.main(args)
    if args.command in ("index", "search"):
        if rest:
            parser.error(f"{args.command} takes no other arguments: {' '.join(rest)}")
        if args.command == "index":
            return search_command.index_main(args)
        return search_command.search_main(args)
    if args.command == "remove":
        return remove_main(args, rest)
    if args.command == "preview":
        return preview_command.main(args, rest)
    if args.command == "report":
        unknown = [arg for arg in rest if not arg.startswith("--")]
        if unknown:
            parser.error(f"report takes one DIR, then Beam's options: {' '.join(unknown)}")
        if args.compare:
            if args.output:
                parser.error("report --compare RUN_A RUN_B takes no DIR of its own")
            return compare_command(args.compare, args.html, args.images, rest)
        if not args.output:
            parser.error("report needs the DIR of a finished run (or --compare RUN_A RUN_B)")
        return report_command(args.output, args.images, rest, args.runs_table)
    try:
        from paircurate.pipeline.demo import DEMO_PORT, run_demo, summary_text

        if args.command == "extract":
            from paircurate.pipeline.extract.command import run_extract, summary_text

            stats = run_extract(argv[1:])
            print(summary_text(stats, args.output))
            return 0
        if args.command == "run":
            from paircurate.pipeline.run import run

            stats = run(argv[1:])
        elif args.command == "retry-failed":
            from paircurate.pipeline.retry import retry_failed

            stats = retry_failed(args.output, rest)
        else:
            stats = run_demo(
                args.output, args.pairs, args.seed, rest, port=DEMO_PORT, from_crawl=args.from_crawl
            )
        if stats is None:  # --output_executable_path: nothing has run yet
            print("the job is written as a jar; it runs when that jar is submitted")
            return 0
        print(summary_text(stats, args.output))
    except (ConfigError, InputError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    status = finish_with_report(stats["options"]["output"]["output"])
    if stats["options"]["output"].get("runs_table") and not stats.get("runs_table_file"):
        print("paircurate: error: the run's row is not in the runs table (see the log)",
              file=sys.stderr)  # fmt: skip
        return 1
    return status


def finish_with_report(output: str) -> int:
    """Write the report of a finished job: 0, or 1 when only the report failed."""
    from paircurate.pipeline.output.write_report import report_after_run

    path = report_after_run(output)
    if path is None:
        print(f"paircurate: error: the report failed; run: paircurate report {output}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"report:   {path}")
    return 0


def remove_main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from paircurate.pipeline.remove_command import remove, summary_text

    try:
        stats = remove(args.output, args.exclude, args.diff, beam_args)
    except ConfigError as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    print(summary_text(stats))
    return finish_with_report(args.output)


def report_command(
    output: str, images: bool, beam_args: list[str] = (), runs_table: str = ""
) -> int:
    from paircurate.pipeline import filesystem as fs
    from paircurate.pipeline.output.write_report import add_to_runs_table, write_report

    fs.configure(list(beam_args))
    from paircurate.pipeline.search_command import read_stats

    try:
        print(write_report(output, with_images=images))
        stats = read_stats(output) if runs_table else {}
    except ConfigError as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    if runs_table:
        stats.setdefault("options", {}).setdefault("output", {})["output"] = output
        path = add_to_runs_table(runs_table, stats)
        if path is None:
            return 1
        print(path)
    return 0


def compare_command(runs: list[str], html: str, images: bool, beam_args: list[str] = ()) -> int:
    from paircurate.pipeline import filesystem as fs
    from paircurate.pipeline.output.write_report import write_comparison

    fs.configure(list(beam_args))
    try:
        print(write_comparison(*runs, path=html, with_images=images))
    except ConfigError as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
