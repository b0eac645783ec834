"""``paircurate index`` and ``paircurate search``: nearest-neighbour search over a run's images.

    paircurate demo --output RUN --write-embeddings --clip-model paircurate-ref
    paircurate index RUN
    paircurate search RUN "three red circles on the left" -k 20
    paircurate search RUN --image photo.jpg

``index`` builds RUN/index/ from RUN/embeddings/img_emb/ shard by shard
(``transforms.embeddings.index``). ``search`` embeds the query with the model
that made the embeddings (the run's --clip-model, unless --model says
otherwise, and then only if it is the same model), prints a table of the
nearest images and writes a self-contained HTML page of them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.model_arguments import add_model_arguments, model_config
from paircurate.schemas.config import ClipConfig, ConfigError, section_from_options
from paircurate.transforms.embeddings.index import IndexConfig, SearchIndexError
from paircurate.transforms.embeddings.provenance import ProvenanceMismatch
from paircurate.transforms.output.store import OutputLayout

INDEX_FOLDER = "index"
SEARCH_FOLDER = "search"


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="DIR", help="a finished run with --write-embeddings")
    parser.add_argument(
        "--index-dir", default="", help="local folder of the index (default: DIR/index)"
    )
    parser.add_argument(
        "--clusters", type=int, default=0, help="inverted lists (0: about 4 x sqrt(vectors))"
    )
    parser.add_argument(
        "--probes", type=int, default=IndexConfig.probes, help="lists a query visits"
    )
    parser.add_argument(
        "--train-size", type=int, default=IndexConfig.train_size, help="vectors to train on"
    )


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="DIR", help="a run indexed by `paircurate index`")
    parser.add_argument("query", nargs="?", default=None, help="a caption to search images by")
    parser.add_argument("--image", default="", metavar="PATH", help="search by this image instead")
    parser.add_argument("-k", type=int, default=20, help="results to show")
    parser.add_argument(
        "--index-dir", default="", help="local folder of the index (default: DIR/index)"
    )
    parser.add_argument(
        "--html",
        default="",
        metavar="FILE",
        help="where the results page goes (default: DIR/search/<query>.html)",
    )
    model = parser.add_argument_group("query model (default: the one that made the embeddings)")
    add_model_arguments(
        model, required=False, model_help="open_clip model name, hf-hub id or paircurate-ref"
    )


def index_folder(args: argparse.Namespace) -> str:
    return args.index_dir or str(Path(args.output) / INDEX_FOLDER)


def read_stats(output: str) -> dict:
    path = OutputLayout(fs.FILES, output).stats_json
    if not fs.exists(path):
        raise ConfigError(f"{output} is not a finished run: {path} is missing")
    return json.loads(fs.read_bytes(path))


def build(args: argparse.Namespace) -> dict:
    """Build the index of ``args.output``; returns what index.json records."""
    from paircurate.transforms.embeddings.index import build_index
    from paircurate.transforms.embeddings.provenance import stats_provenance

    provenance = stats_provenance(read_stats(args.output))
    if provenance is None:
        raise ConfigError(
            f"{args.output}/stats.json records no clip_provenance (what made the embeddings): "
            "run the job again with a --clip-model and --write-embeddings"
        )
    config = IndexConfig(clusters=args.clusters, probes=args.probes, train_size=args.train_size)
    layout = OutputLayout(fs.FILES, args.output)
    return build_index(layout, index_folder(args), provenance, config)


def query_config(args: argparse.Namespace, stats: dict) -> ClipConfig:
    """The run's own model, unless the command names another one."""
    stored = section_from_options(ClipConfig, (stats.get("options") or {}).get("clip") or {})
    if not args.model:
        return ClipConfig(
            clip_model=stored.clip_model,
            clip_pretrained=stored.clip_pretrained,
            clip_checkpoint=stored.clip_checkpoint,
            clip_device=args.device,
        )
    return model_config(args)


def html_path(args: argparse.Namespace, label: str) -> str:
    if args.html:
        return args.html
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60] or "query"
    return str(Path(args.output) / SEARCH_FOLDER / f"{slug}.html")


def search(args: argparse.Namespace) -> tuple[list, str]:
    """Answer the query; returns (hits, path of the page written)."""
    from paircurate.report import search_page
    from paircurate.transforms.embeddings.index import SearchIndex
    from paircurate.transforms.embeddings.provenance import provenance_of, require_same_model
    from paircurate.transforms.embeddings.search import Query, embed_query, find
    from paircurate.transforms.scoring.clip import load_clip

    if (args.query is None) == (not args.image):
        raise ConfigError("paircurate search: give a caption or --image PATH (one of them)")
    if args.k < 1:
        raise ConfigError("-k must be at least 1")
    if args.image:
        image = Path(args.image)
        if not image.is_file():
            raise ConfigError(f"--image {args.image}: no such file")
        query = Query(image=image.read_bytes(), image_name=image.name)
    else:
        query = Query(text=args.query)
    index = SearchIndex(index_folder(args))
    config = query_config(args, read_stats(args.output))
    scorer = load_clip(config)
    mine = provenance_of(config, scorer.inputs.signature, scorer.context_length, fs.FILES)
    if index.provenance is None:
        raise ConfigError(f"the index in {index_folder(args)} records no provenance: build again")
    require_same_model(index.provenance, mine, f"the embeddings of {args.output}")
    layout = OutputLayout(fs.FILES, args.output)
    hits = find(index, layout, embed_query(scorer, query), args.k, search_page.thumbnail_uri)
    page = search_page.render(args.output, query, hits, index.info, index.provenance)
    path = html_path(args, query.label)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(page, encoding="utf-8")
    return hits, path


def table(hits: list, width: int = 60) -> str:
    """The results as a plain-text table, one line a hit."""
    lines = [f"{'rank':>4}  {'score':>7}  {'uid':<32}  {'shard/row':<11}  caption"]
    for hit in hits:
        caption = " ".join((hit.caption or "").split())
        caption = caption if len(caption) <= width else caption[: width - 1] + "…"
        place = f"{hit.shard}/{hit.row}"
        lines.append(f"{hit.rank:>4}  {hit.score:>7.4f}  {hit.uid:<32}  {place:<11}  {caption}")
    return "\n".join(lines)


def index_main(args: argparse.Namespace) -> int:
    try:
        info = build(args)
    except (ConfigError, SearchIndexError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    print(
        f"indexed {info['vectors']:,} images of {info['shards']} shard(s) "
        f"({info['index']}) into {index_folder(args)}"
    )
    return 0


def search_main(args: argparse.Namespace) -> int:
    from paircurate.transforms.scoring.clip_names import ClipLoadError

    try:
        hits, path = search(args)
    except (ConfigError, SearchIndexError, ProvenanceMismatch, ClipLoadError, ValueError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    print(table(hits))
    print(f"page:     {path}")
    return 0
