"""The reference CLIP scorer: ships with the package, loads like a real open_clip model, and
importing it costs neither torch nor the synthetic web."""

from __future__ import annotations

import json
import subprocess
import sys

import open_clip
from PIL import Image

from paircurate.transforms.scoring.reference_scorer import (
    CHECKPOINT_PATH,
    CONFIG_PATH,
    MODEL_NAME,
    register_reference_model,
)


def test_config_and_checkpoint_ship_together_and_fit_10_mb() -> None:
    assert CONFIG_PATH.name == f"{MODEL_NAME}.json"  # open_clip names a config by its file stem
    assert CONFIG_PATH.parent == CHECKPOINT_PATH.parent
    assert CHECKPOINT_PATH.stat().st_size <= 10_000_000


def test_loads_by_name_through_open_clip_like_a_real_model() -> None:
    register_reference_model()
    assert MODEL_NAME in open_clip.list_models()
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL_NAME, pretrained=str(CHECKPOINT_PATH)
    )
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    assert isinstance(model, open_clip.CLIP)
    assert tokenizer(["a red circle"]).shape == (1, 77)
    assert preprocess(Image.new("RGB", (100, 80), (200, 30, 30))).shape == (3, 64, 64)


def test_importing_the_scorer_loads_no_synthetic_web_server_or_torch() -> None:
    """What scoring and the launcher import stays light: the web and training live elsewhere."""
    probe = (
        "import json, sys\n"
        "from paircurate.transforms.scoring import reference_scorer\n"
        "names = ('paircurate.synthweb', 'paircurate.synthweb.server', 'http.server', 'torch',\n"
        "         'open_clip', 'paircurate.synthweb.reference_training')\n"
        "print(json.dumps({name: name in sys.modules for name in names}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == dict.fromkeys(loaded, False)
    assert set(loaded) >= {"paircurate.synthweb", "http.server", "torch"}
