"""open_clip's model and tag lists, read without torch, are open_clip's own."""

from __future__ import annotations

import sys

import open_clip
import pytest

from paircurate.transforms.scoring import clip_names
from paircurate.transforms.scoring.clip_names import ClipLoadError
from paircurate.transforms.scoring.reference_scorer import MODEL_NAME


def test_the_torch_free_lists_equal_open_clips(monkeypatch) -> None:
    # open_clip's built-in configs; other tests may register more of the project's own.
    imported = {name for name in open_clip.list_models() if not name.startswith(MODEL_NAME)}
    imported.add(MODEL_NAME)
    with monkeypatch.context() as patch:
        patch.delitem(sys.modules, "open_clip")  # answer as the launcher does
        bare = clip_names._bare_pretrained()
        assert set(clip_names.known_models()) == imported
        assert not bare.__name__.startswith("open_clip")
    for name in ("ViT-B-32", "ViT-L-14", "RN50", "ViT-B-16-SigLIP"):
        assert bare.list_pretrained_tags_by_model(name) == (
            open_clip.list_pretrained_tags_by_model(name)
        )
        for tag in open_clip.list_pretrained_tags_by_model(name):
            assert bare.get_pretrained_cfg(name, tag) == open_clip.get_pretrained_cfg(name, tag)


def test_names_and_tags_are_checked_with_suggestions() -> None:
    clip_names.check_model_name("ViT-B/32")
    clip_names.check_pretrained_tag("ViT-B/32", "laion2b_s34b_b79k")
    with pytest.raises(ClipLoadError, match="did you mean ViT-B-32"):
        clip_names.check_model_name("ViT-B-32x")
    with pytest.raises(ClipLoadError, match="open_clip has no pretrained tag for it"):
        clip_names.check_pretrained_tag(MODEL_NAME, "laion2b_s34b_b79k")
    clip_names.check_pretrained_tag(MODEL_NAME, "/weights/ref.pt", tag_is_file=True)
