"""``paircurate eval``: zero-shot classification and retrieval of any open_clip model.

    paircurate eval --model paircurate-ref --zeroshot EVALSET --retrieval RUN \
        --output RUN/eval/ref.json

The model is named as for ``--clip-model`` of ``run``: an open_clip architecture
with ``--pretrained TAG`` or ``--checkpoint PATH`` (``--model-config FILE`` first
registers an architecture of your own, as ``open_clip_train`` was given), an
``hf-hub:ORG/NAME`` id, or ``paircurate-ref``. A result written into a run folder's
``eval/`` folder appears in that run's report.html.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from paircurate.pipeline.model_arguments import add_model_arguments, model_config
from paircurate.schemas.config import ClipConfig, ConfigError
from paircurate.transforms.output.store import EVAL_FOLDER

logger = logging.getLogger(__name__)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    add_model_arguments(
        model,
        required=True,
        model_help="open_clip architecture (ViT-B-32, ...), hf-hub:ORG/NAME, or paircurate-ref",
    )
    model.add_argument(
        "--model-config",
        default="",
        metavar="FILE",
        help="an open_clip model config JSON to register first; --model names it by file stem",
    )
    model.add_argument("--batch-size", type=int, default=64, help="images embedded per batch")
    shot = parser.add_argument_group("zero-shot classification")
    shot.add_argument(
        "--zeroshot",
        default="",
        metavar="SOURCE",
        help="labelled images: an ImageFolder tree, or WebDataset .tar file(s) with a class "
        "field; a classes.json beside them names classes and templates",
    )
    shot.add_argument(
        "--classnames", default="", metavar="FILE", help="class names: a JSON list or one a line"
    )
    shot.add_argument(
        "--template",
        action="append",
        default=[],
        help="a prompt template with {} for the class name; repeat for an ensemble "
        "(default: 'a photo of a {}.', 'a drawing of a {}.', ...)",
    )
    shot.add_argument(
        "--class-field", default="", help="WebDataset label field: cls (KEY.cls) or json.NAME"
    )
    shot.add_argument("--task", default=None, help="a task of the data's classes.json")
    shot.add_argument(
        "--language", default="en", help="language of class names and templates in classes.json"
    )
    shot.add_argument("--zeroshot-limit", type=int, default=0, help="images at most (0: all)")
    found = parser.add_argument_group("retrieval")
    found.add_argument(
        "--retrieval",
        default="",
        metavar="SOURCE",
        help="captioned pairs: a paircurate run folder, or WebDataset .tar file(s) with txt",
    )
    found.add_argument("--retrieval-limit", type=int, default=0, help="pairs at most (0: all)")
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="JSON result file; RUN/eval/NAME.json puts it in that run's report",
    )


def clip_config(args: argparse.Namespace) -> ClipConfig:
    return model_config(args, clip_batch_size=args.batch_size)


def read_classnames(path: str) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        names = json.loads(text)
        if not isinstance(names, list):
            raise ConfigError(f"--classnames {path}: expected a JSON list of names")
        return [str(name) for name in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, run what was asked, and return the result (also written to --output)."""
    import open_clip

    from paircurate.evaluation import evaluate as evaluation
    from paircurate.transforms.scoring.clip import load_clip

    if not args.zeroshot and not args.retrieval:
        raise ConfigError("paircurate eval: give --zeroshot SOURCE, --retrieval SOURCE, or both")
    if args.model_config:
        open_clip.add_model_config(args.model_config)
    config = clip_config(args)
    scorer = load_clip(config)
    label = Path(args.checkpoint).name if args.checkpoint else args.model
    result: dict[str, Any] = {
        "model": {
            "label": label,
            "model": args.model,
            "pretrained": args.pretrained or None,
            "checkpoint": args.checkpoint or None,
            "device": str(scorer.device),
        },
        "versions": evaluation.versions(),
    }
    if args.zeroshot:
        task = evaluation.ZeroShotTask(
            source=args.zeroshot,
            classnames=read_classnames(args.classnames) if args.classnames else [],
            templates=list(args.template),
            label_field=args.class_field,
            task=args.task,
            language=args.language,
            limit=args.zeroshot_limit,
        )
        result["zeroshot"] = evaluation.zero_shot(scorer, task)
    if args.retrieval:
        result["retrieval"] = evaluation.retrieval(scorer, args.retrieval, args.retrieval_limit)
    evaluation.write_result(result, args.output)
    return result


def run_folder_of(output: str) -> str | None:
    """The run folder when the result went to RUN/eval/NAME.json of a finished run."""
    folder = os.path.dirname(os.path.abspath(output))
    run = os.path.dirname(folder)
    is_run = os.path.basename(folder) == EVAL_FOLDER and os.path.isfile(
        os.path.join(run, "stats.json")
    )
    return run if is_run else None


def main(args: argparse.Namespace) -> int:
    from paircurate.evaluation.data import EvalDataError
    from paircurate.evaluation.evaluate import summary_lines
    from paircurate.transforms.scoring.clip import ClipLoadError

    try:
        result = evaluate(args)
    except (ConfigError, ClipLoadError, EvalDataError, FileNotFoundError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    for line in summary_lines(result):
        print(line)
    print(f"result:    {args.output}")
    run = run_folder_of(args.output)
    if run is not None:
        from paircurate.pipeline.cli import finish_with_report

        return finish_with_report(run)
    return 0
