"""The reference CLIP scorer: a tiny open_clip model that the project trains itself.

No model weights can be downloaded on our machines, so tests, the demo and the
benchmarks score pairs with this model instead of LAION's ViT-B-32. It is an
ordinary open_clip architecture (``transforms/scoring/models/paircurate-ref.json``,
registered under ``MODEL_NAME``) with an ordinary open_clip checkpoint, so it
goes through exactly the code path of a real model::

    register_reference_model()
    model, _, preprocess = open_clip.create_model_and_transforms(
        "paircurate-ref", pretrained=str(CHECKPOINT_PATH)
    )
    tokenizer = open_clip.get_tokenizer("paircurate-ref")

The architecture is small enough to train on two CPU cores in about five
minutes: a ViT on 64 px images (8 px patches, 3 layers, width 128) and a text
transformer (2 layers, width 64) over open_clip's own 77-token BPE, joined in a
64-d embedding. Of its 3.7 M parameters, 3.2 M are the token table of the
49,408-token vocabulary; stored in fp16 the checkpoint is 7.4 MB.

This module holds only what scoring needs: the name, the files, the
registration and the calibrated threshold. Importing it loads neither torch nor
the synthetic web. Training and calibration, which need the synthetic web, are
``paircurate.synthweb.reference_training``.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "paircurate-ref"
MODELS_DIR = Path(__file__).resolve().parent / "models"
CONFIG_PATH = MODELS_DIR / f"{MODEL_NAME}.json"
CHECKPOINT_PATH = MODELS_DIR / "paircurate_ref.pt"
# Cosine similarity, from `calibrate` on the shipped checkpoint: the cut that best separates
# matching from mismatched captions on rows of the training seed's web that training never saw.
REFERENCE_THRESHOLD = 0.6375
# Seeds of the synthetic web: training (and calibration, on rows past the training ones).
# Tests use 0, 3, 5 and 11; the quality bench holds out 2002.
TRAIN_SEED = 1001
TRAIN_COMMAND = "python -m paircurate.synthweb.reference_training train --out PATH"


def register_reference_model() -> None:
    """Make ``MODEL_NAME`` known to open_clip, as if it were one of its built-in configs."""
    import open_clip  # imports torch: only where a model is about to be built

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_PATH)
