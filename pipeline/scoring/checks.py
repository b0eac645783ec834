"""What the launcher checks about scoring before it submits a job, without loading a model.

The model name must be one open_clip knows, the pretrained tag one it has for
that model, the checkpoint a file that exists where the workers can read it,
and ``--clip-device cuda`` must have a GPU to run on where that can be known
here. None of this imports torch or open_clip (``transforms.scoring.clip_names``
reads their lists): the workers load the model, the launcher only submits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.scoring.weights import is_local_path
from paircurate.schemas.config import ClipConfig, ConfigError, JobConfig
from paircurate.transforms.scoring import reference_scorer
from paircurate.transforms.scoring.clip_names import (
    LOCAL_DIR_PREFIX,
    ClipLoadError,
    builtin_model_config,
    check_model_name,
    check_pretrained_tag,
    check_text_library,
    check_weights_at_hand,
    is_model_id,
    local_weights_hint,
)

# Runners whose workers are this machine's threads or processes.
LOCAL_RUNNERS = frozenset(
    {"directrunner", "switchingdirectrunner", "bundlebaseddirectrunner", "fnapirunner"}
)


def runs_here(beam_args: Sequence[str]) -> bool:
    """Whether the job's workers run on this machine, so they see its files and devices."""
    options = PipelineOptions(list(beam_args))
    runner = options.view_as(StandardOptions).runner
    if runner is None or runner.rsplit(".", 1)[-1].lower() in LOCAL_RUNNERS:
        return True
    return options.view_as(PortableOptions).environment_type == "LOOPBACK"


def refuse_local_path(flag: str, path: str, beam_args: Sequence[str], fix: str) -> None:
    """A path on this machine's disk is no use to workers elsewhere: stop before submitting."""
    if is_local_path(path) and not runs_here(beam_args):
        raise ConfigError(
            f"{flag} {path} is a path on this machine, which the workers of a remote runner "
            f"cannot read; {fix}"
        )


def check_clip(config: JobConfig, beam_args: Sequence[str] = ()) -> None:
    """Raise ConfigError, in seconds, where scoring could not run as asked."""
    if not config.clip.scores or config.output.text_only:
        return
    try:
        check_clip_model(config.clip, beam_args)
    except ClipLoadError as error:
        raise ConfigError(str(error)) from error
    check_clip_device(config.clip, beam_args)


def check_clip_model(clip: ClipConfig, beam_args: Sequence[str]) -> None:
    """Name, tag and checkpoint, as far as they can be checked without loading the model."""
    name = clip.clip_model
    if is_model_id(name):
        if clip.clip_checkpoint:
            raise ClipLoadError(
                f"--clip-checkpoint cannot be combined with --clip-model {name}: open_clip "
                f"takes the weights from the model id. " + local_weights_hint(name)
            )
        folder = name[len(LOCAL_DIR_PREFIX) :]
        if name.startswith(LOCAL_DIR_PREFIX) and runs_here(beam_args):
            if not Path(folder, "open_clip_config.json").is_file():
                raise ClipLoadError(
                    f"--clip-model {name}: {folder} holds no open_clip_config.json. "
                    + local_weights_hint(name)
                )
        return
    check_model_name(name)
    check_text_library(name, builtin_model_config(name))
    if clip.clip_checkpoint:
        check_checkpoint(clip.clip_checkpoint, name, beam_args)
    elif name == reference_scorer.MODEL_NAME:
        if not Path(reference_scorer.CHECKPOINT_PATH).is_file():
            raise ClipLoadError(
                f"the reference scorer's checkpoint {reference_scorer.CHECKPOINT_PATH} is "
                f"missing from this install; build it with `{reference_scorer.TRAIN_COMMAND}` "
                f"and pass --clip-checkpoint PATH, or use --clip-model none to turn scoring off."
            )
    else:
        tag = clip.clip_pretrained
        here = runs_here(beam_args)
        is_file = bool(tag) and here and Path(tag).is_file()
        check_pretrained_tag(name, tag, tag_is_file=is_file)
        if here and not is_file:  # remote workers have caches of their own (docs/clip.md)
            check_weights_at_hand(name, tag)


def check_checkpoint(path: str, name: str, beam_args: Sequence[str]) -> None:
    """The checkpoint exists (through Beam's filesystems) where the workers can read it."""
    refuse_local_path(
        "--clip-checkpoint", path, beam_args,
        "copy it to a bucket (gs://, s3://; each worker machine copies it once into its cache) "
        "or build it into the worker image (docs/clip.md, Scoring on GPUs).",
    )  # fmt: skip
    try:
        found = fs.exists(path)
    except Exception as error:  # noqa: BLE001 - BeamIOError and the stores' own errors
        raise ClipLoadError(
            f"--clip-checkpoint {path}: cannot be checked ({error}). " + local_weights_hint(name)
        ) from error
    if not found:
        raise ClipLoadError(f"--clip-checkpoint {path}: no such file. " + local_weights_hint(name))


def check_clip_device(clip: ClipConfig, beam_args: Sequence[str]) -> None:
    """``--clip-device cuda`` needs a GPU: here on a local runner, asked for on Dataflow.

    Other remote runners' machines cannot be seen from here; their workers fail
    loudly when they load the model without one.
    """
    if clip.clip_device != "cuda":
        return
    if runs_here(beam_args):
        import torch  # the local run loads it anyway, to score

        if not torch.cuda.is_available():
            raise ConfigError(
                "--clip-device cuda: this machine runs the job (a local runner) and torch "
                "sees no CUDA GPU here; use --clip-device auto or cpu."
            )
        return
    options = PipelineOptions(list(beam_args))
    runner = (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    service = options.view_as(GoogleCloudOptions).dataflow_service_options or []
    gpu_everywhere = any(option.startswith("worker_accelerator") for option in service)
    if runner == "dataflowrunner" and not (clip.clip_accelerator or gpu_everywhere):
        raise ConfigError(
            "--clip-device cuda on Dataflow needs GPU workers for the Score step: add "
            "--clip-accelerator 'type:nvidia-l4;count:1;install-nvidia-driver' "
            "(docs/clip.md, Scoring on GPUs), or use --clip-device auto."
        )
