"""The model options that ``paircurate eval`` and ``paircurate search`` share.

Both name a CLIP model as ``run``'s ``--clip-model`` does, and both build the
same ``ClipConfig`` from it, so the options and their meaning live here once.
"""

from __future__ import annotations

import argparse
from typing import Any

from paircurate.schemas.config import CLIP_DEVICES, ClipConfig


def add_model_arguments(group: Any, *, required: bool, model_help: str) -> None:
    """``--model``, ``--pretrained``, ``--checkpoint`` and ``--device`` on ``group``."""
    group.add_argument("--model", required=required, default="", help=model_help)
    group.add_argument("--pretrained", default="", help="open_clip pretrained tag of --model")
    group.add_argument(
        "--checkpoint", default="", help="a local checkpoint for --model (open_clip_train's too)"
    )
    group.add_argument("--device", default="auto", choices=CLIP_DEVICES)


def model_config(args: argparse.Namespace, **settings: Any) -> ClipConfig:
    """The ``ClipConfig`` of the model the options name; ``settings`` sets other fields."""
    return ClipConfig(
        clip_model=args.model,
        clip_pretrained=args.pretrained,
        clip_checkpoint=args.checkpoint,
        clip_device=args.device,
        **settings,
    )
