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


@pytest.mark.parametrize("answer_as", ["imported", "launcher"])
def test_guard_open_clips_safetensors_rule_keeps_its_name_and_answers(monkeypatch, answer_as):
    """weights_names asks the cache for what open_clip's private _get_safe_alternatives
    makes it load; this fails when open_clip renames or changes it."""
    with monkeypatch.context() as patch:
        if answer_as == "launcher":
            patch.delitem(sys.modules, "open_clip")
        assert clip_names.weights_names() == [
            "open_clip_model.safetensors",
            "open_clip_pytorch_model.bin",
        ]
        assert clip_names.weights_names("weights.pth") == ["weights.safetensors", "weights.pth"]


def test_guard_open_clips_public_download_takes_a_file_name() -> None:
    import inspect

    from open_clip.pretrained import download_pretrained_from_hf

    parameters = inspect.signature(download_pretrained_from_hf).parameters
    assert list(parameters)[:2] == ["model_id", "filename"]


def test_text_towers_from_transformers_are_told_apart() -> None:
    assert clip_names.builtin_model_config("ViT-B-16-SigLIP")["text_cfg"]["hf_tokenizer_name"]
    assert (
        "hf_model_name" in clip_names.builtin_model_config("xlm-roberta-base-ViT-B-32")["text_cfg"]
    )
    assert clip_names.preprocess_overrides({"mean": (0.5,), "url": "x", "quick_gelu": True}) == {
        "image_mean": (0.5,)
    }
