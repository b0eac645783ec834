"""CLIP loading and scoring: same numbers as a plain open_clip loop, clear load errors.

Every model here is the reference architecture with random weights saved to a temp
file, so no test depends on the shipped checkpoint or on any download.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image, ImageDraw

from paircurate.schemas.config import ClipConfig
from paircurate.synthweb import SyntheticWeb
from paircurate.synthweb.reference_training import decode_image
from paircurate.transforms.scoring import clip, reference_scorer
from paircurate.transforms.scoring.clip import ClipLoadError, ClipScorer, ScoreBatch, load_clip
from paircurate.transforms.scoring.reference_scorer import MODEL_NAME

CAPTIONS_EXTRA = ["a red square", "two blue circles on a white background", "Ein grüner Stern"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a busy shared machine, a tiny model's forward with two
    OpenMP threads takes 100x longer (measured 130 ms against 0.5 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight checkpoint of the reference architecture, in open_clip's format."""
    reference_scorer.register_reference_model()
    torch.manual_seed(0)
    model = open_clip.create_model(MODEL_NAME)
    path = tmp_path_factory.mktemp("clip") / "random_ref.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def config(checkpoint: Path) -> ClipConfig:
    return ClipConfig(
        clip_model=MODEL_NAME, clip_checkpoint=str(checkpoint), clip_device="cpu", clip_batch_size=8
    )


@pytest.fixture(scope="module")
def scorer(config: ClipConfig) -> ClipScorer:
    return load_clip(config)


@pytest.fixture(scope="module")
def pairs() -> tuple[list[Image.Image], list[str]]:
    """Decodable rows of a small synthetic web (16 of 20), plus three drawn images."""
    web = SyntheticWeb(20, seed=7)
    images, captions = [], []
    for index in range(len(web)):
        try:
            images.append(decode_image(web.image_bytes(index)))
        except (ValueError, OSError):  # rows without an image
            continue
        captions.append(web.entry(index).caption)
    for number, caption in enumerate(CAPTIONS_EXTRA):
        image = Image.new("RGB", (90 + 20 * number, 70), (250, 250, 250))
        ImageDraw.Draw(image).ellipse((10, 10, 60, 60), fill=(30 * number, 120, 200))
        images.append(image)
        captions.append(caption)
    return images, captions


def direct_open_clip(checkpoint: Path, images: list[Image.Image], captions: list[str]):
    """The plain open_clip loop a user would write, one pair at a time."""
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL_NAME, pretrained=str(checkpoint)
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    image_rows, text_rows = [], []
    with torch.no_grad():
        for image, caption in zip(images, captions, strict=True):
            image_features = model.encode_image(preprocess(image)[None])
            text_features = model.encode_text(tokenizer([caption]))
            image_rows.append((image_features / image_features.norm(dim=-1, keepdim=True))[0])
            text_rows.append((text_features / text_features.norm(dim=-1, keepdim=True))[0])
    image_embeddings = torch.stack(image_rows).numpy()
    text_embeddings = torch.stack(text_rows).numpy()
    return (image_embeddings * text_embeddings).sum(axis=1), image_embeddings, text_embeddings


# --- scoring -----------------------------------------------------------------------------


def test_scores_equal_a_direct_open_clip_forward(scorer, checkpoint, pairs) -> None:
    images, captions = pairs
    result = scorer.score(images, captions)
    scores, image_embeddings, text_embeddings = direct_open_clip(checkpoint, images, captions)
    assert len(images) == 19
    assert result.scores.dtype == np.float32 and result.scores.shape == (19,)
    assert result.image_embeddings.dtype == np.float32
    assert result.image_embeddings.shape == result.text_embeddings.shape == (19, 64)
    np.testing.assert_allclose(result.scores, scores, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.image_embeddings, image_embeddings, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.text_embeddings, text_embeddings, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(result.image_embeddings, axis=1), 1.0, atol=1e-5)
    assert result.truncated == [False] * 19


def test_batch_size_does_not_change_results(config, scorer, pairs) -> None:
    images, captions = pairs
    one = ClipScorer.from_model(scorer.model, scorer.preprocess, scorer.tokenizer, "cpu", 1)
    by_one, by_eight = one.score(images, captions), scorer.score(images, captions)
    assert scorer.batch_size == config.clip_batch_size == 8
    np.testing.assert_allclose(by_one.scores, by_eight.scores, atol=1e-5, rtol=0)
    np.testing.assert_allclose(by_one.image_embeddings, by_eight.image_embeddings, atol=1e-5)
    np.testing.assert_allclose(by_one.text_embeddings, by_eight.text_embeddings, atol=1e-5)


def test_stages_compose_to_score(scorer, pairs) -> None:
    images, captions = pairs[0][:3], pairs[1][:3]
    pixels = scorer.preprocess_images(images)
    tokens, truncated = scorer.tokenize(captions)
    image_embeddings, text_embeddings = scorer.embed_images(pixels), scorer.embed_texts(tokens)
    assert pixels.shape == (3, 3, 64, 64) and tokens.shape == (3, 77)
    expected = (image_embeddings * text_embeddings).sum(axis=1)
    np.testing.assert_allclose(scorer.score(images, captions).scores, expected, atol=1e-6)
    assert truncated == [False, False, False]


def test_truncated_exactly_when_caption_needs_more_than_the_context(scorer) -> None:
    fits, cut = "red " * 75, "red " * 76  # one BPE token per word; 75 + start + end = 77
    assert len(scorer.tokenizer.encode(fits)) == 75
    assert scorer.context_length == 77
    tokens, truncated = scorer.tokenize(["a red square", fits, cut])
    assert truncated == [False, False, True]
    assert tokens.shape == (3, 77)
    image = Image.new("RGB", (32, 32))
    assert scorer.score([image] * 3, ["a red square", fits, cut]).truncated == [False, False, True]


def test_empty_batch(scorer) -> None:
    result = scorer.score([], [])
    assert result.scores.shape == (0,) and result.image_embeddings.shape == (0, 64)
    assert result.text_embeddings.shape == (0, 64) and result.truncated == []


def test_mismatched_lengths_are_a_bug(scorer) -> None:
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        scorer.score([Image.new("RGB", (8, 8))] * 2, ["one"])


def test_scorer_attributes(scorer) -> None:
    assert scorer.device == torch.device("cpu")
    assert (scorer.embed_dim, scorer.context_length) == (64, 77)
    assert not scorer.model.training
    assert isinstance(scorer.score([Image.new("RGB", (8, 8))], ["x"]), ScoreBatch)


def test_config_pickles_and_loads_again(config) -> None:
    """A Beam ModelHandler ships the config to workers and loads the model there."""
    again = pickle.loads(pickle.dumps(config))
    assert again == config
    assert load_clip(again).embed_dim == 64


# --- loading errors ----------------------------------------------------------------------


def load_error(**options) -> str:
    with pytest.raises(ClipLoadError) as caught:
        load_clip(ClipConfig(clip_device="cpu", **options))
    return str(caught.value)


def test_unknown_model_name() -> None:
    message = load_error(clip_model="ViT-B-99")
    assert message.startswith("--clip-model 'ViT-B-99' is not an open_clip model (did you mean")
    assert "--clip-checkpoint PATH" in message and "--clip-model paircurate-ref" in message


def test_unknown_pretrained_tag() -> None:
    message = load_error(clip_model="ViT-B-32", clip_pretrained="no_such_tag")
    assert message.startswith("--clip-pretrained 'no_such_tag' is not an open_clip tag for")
    assert "laion2b_s34b_b79k" in message and "--clip-checkpoint PATH" in message


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.pt"
    message = load_error(clip_model="ViT-B-32", clip_checkpoint=str(missing))
    assert message.startswith(f"--clip-checkpoint {missing}: no such file.")
    assert "open_clip checkpoint for the ViT-B-32 architecture" in message


def test_corrupt_checkpoint_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torch checkpoint")
    message = load_error(clip_model=MODEL_NAME, clip_checkpoint=str(corrupt))
    assert message.startswith(f"the checkpoint {corrupt} could not be loaded as an open_clip")
    assert "--clip-checkpoint PATH" in message


def test_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"visual.proj": torch.zeros(2, 2)}, other)
    message = load_error(clip_model=MODEL_NAME, clip_checkpoint=str(other))
    assert f"could not be loaded as an open_clip checkpoint for {MODEL_NAME}" in message


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """An empty Hugging Face cache and a Hub that does not answer; records probed hosts."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    probed: list[str] = []
    monkeypatch.setattr(clip, "_hub_reachable", lambda host: probed.append(host) or False)
    return probed


def test_pretrained_tag_not_cached_and_no_network(offline_hub: list[str]) -> None:
    message = load_error(clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k")
    assert message.startswith(
        "the weights of ViT-B-32 laion2b_s34b_b79k are not in the local Hugging Face cache "
        "and huggingface.co cannot be reached"
    )
    assert "--clip-checkpoint PATH" in message and offline_hub == ["huggingface.co"]


def test_hf_hub_model_not_cached_and_no_network(offline_hub: list[str]) -> None:
    message = load_error(clip_model="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert message.startswith("the weights of hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert "--clip-checkpoint PATH" in message and offline_hub == ["huggingface.co"]


def cache_snapshot(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache entry as huggingface_hub's download leaves it."""
    entry = cache / f"models--{repo.replace('/', '--')}"
    snapshot = entry / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0123abcd")
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


@pytest.fixture
def no_hub_requests(monkeypatch: pytest.MonkeyPatch, offline_hub: list[str]) -> Iterator[list[str]]:
    """Any download through huggingface_hub fails the test; the offline flag is watched."""
    import huggingface_hub
    from huggingface_hub import constants

    def refuse(*args, **kwargs):
        raise AssertionError(f"a Hub request was made: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", refuse)
    flag = constants.HF_HUB_OFFLINE
    yield offline_hub
    assert constants.HF_HUB_OFFLINE == flag  # never flipped, not even for a while


def test_a_cached_tag_loads_from_the_cache_with_its_preprocessing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint: Path, no_hub_requests
) -> None:
    """A tag whose weights are in the Hugging Face cache: the file is loaded without asking
    the Hub, with the tag's own transform, as open_clip builds it from the tag."""
    from huggingface_hub import constants

    name = "paircurate-ref-hubtag"
    architecture = tmp_path / f"{name}.json"
    architecture.write_text(reference_scorer.CONFIG_PATH.read_text())
    open_clip.add_model_config(architecture)
    cache_snapshot(Path(constants.HF_HUB_CACHE), "org/ref", {
        "open_clip_pytorch_model.bin": checkpoint.read_bytes(),
    })  # fmt: skip
    tag = {
        "url": "", "hf_hub": "org/ref/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.5, 0.75),
        "interpolation": "bilinear", "resize_mode": "squash",
    }  # fmt: skip
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"cached": tag})
    config = ClipConfig(clip_model=name, clip_pretrained="cached", clip_device="cpu")
    model = load_clip(config)
    inputs = clip.load_clip_inputs(config)
    assert dict(model.inputs.signature)["resize_mode"] == "squash"
    assert dict(model.inputs.signature)["std"] == (0.25, 0.5, 0.75)
    assert inputs.signature == model.inputs.signature
    reference = load_clip(ClipConfig(clip_model=MODEL_NAME, clip_checkpoint=str(checkpoint)))
    for ours, theirs in zip(model.model.state_dict().values(),
                            reference.model.state_dict().values(), strict=True):  # fmt: skip
        assert torch.equal(ours, theirs)
    assert no_hub_requests == []  # the Hub was not even probed


def test_a_cached_hub_id_loads_its_snapshot_as_a_local_folder(
    checkpoint: Path, no_hub_requests, pairs
) -> None:
    from huggingface_hub import constants

    config_json = {
        "model_cfg": json.loads(reference_scorer.CONFIG_PATH.read_text()),
        "preprocess_cfg": {"resize_mode": "squash"},
    }
    cache_snapshot(Path(constants.HF_HUB_CACHE), "org/ref-id", {
        "open_clip_config.json": json.dumps(config_json).encode(),
        "open_clip_pytorch_model.bin": checkpoint.read_bytes(),
    })  # fmt: skip
    config = ClipConfig(clip_model="hf-hub:org/ref-id", clip_device="cpu")
    model = load_clip(config)
    inputs = clip.load_clip_inputs(config)
    assert dict(inputs.signature)["resize_mode"] == "squash"
    assert inputs.signature == model.inputs.signature
    wide = pairs[0][-1]
    assert torch.equal(inputs.preprocess_images([wide]), model.preprocess_images([wide]))
    assert no_hub_requests == []


def test_a_hub_id_config_not_cached_and_no_network(offline_hub: list[str]) -> None:
    with pytest.raises(ClipLoadError) as raised:
        clip.load_clip_inputs(ClipConfig(clip_model="hf-hub:org/missing"))
    assert str(raised.value).startswith(
        "the configuration of hf-hub:org/missing is not in the local Hugging Face cache"
    )
    assert offline_hub == ["huggingface.co"]


def test_a_text_tower_from_transformers_needs_the_extra(monkeypatch) -> None:
    from paircurate.transforms.scoring import clip_names

    real = clip_names.importlib.util.find_spec
    monkeypatch.setattr(
        clip_names.importlib.util, "find_spec",
        lambda name, *a: None if name == "transformers" else real(name, *a),
    )  # fmt: skip
    message = load_error(clip_model="ViT-B-16-SigLIP", clip_pretrained="webli")
    assert message.startswith("--clip-model ViT-B-16-SigLIP takes its text tower or tokenizer")
    assert "pip install 'paircurate[hf-text]'" in message


def test_missing_reference_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(reference_scorer, "CHECKPOINT_PATH", tmp_path / "paircurate_ref.pt")
    message = load_error(clip_model=MODEL_NAME)
    assert message.startswith("the reference scorer's checkpoint")
    assert reference_scorer.TRAIN_COMMAND in message and "--clip-checkpoint PATH" in message


def test_model_none_is_not_loadable() -> None:
    config = ClipConfig(clip_model="none")
    assert not config.scores
    with pytest.raises(ClipLoadError, match="--clip-model none turns CLIP scoring off"):
        load_clip(config)


def test_cuda_without_gpu(monkeypatch: pytest.MonkeyPatch, config: ClipConfig) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ClipLoadError, match="--clip-device cuda: torch sees no CUDA GPU"):
        load_clip(ClipConfig(clip_model=MODEL_NAME, clip_device="cuda"))
    assert clip.resolve_device("auto") == torch.device("cpu")


# --- inputs made without the model, scored by it ---------------------------------------------


def test_inputs_made_without_weights_score_bit_for_bit_like_the_model(config, scorer, pairs):
    """What a worker prepares and the shared model scores equals scoring in one process."""
    images, captions = pairs[0][:8], pairs[1][:8]
    inputs = clip.load_clip_inputs(config)
    prepared = inputs.prepare(images, captions)
    assert inputs.signature == scorer.inputs.signature
    assert prepared.pixels.dtype == np.float32 and prepared.pixels.shape == (8, 3, 64, 64)
    assert prepared.tokens.dtype == np.int64 and prepared.tokens.shape == (8, 77)
    assert torch.equal(torch.from_numpy(prepared.pixels), scorer.preprocess_images(images))
    again = pickle.loads(pickle.dumps(prepared))  # as it crosses to the shared model
    scored, direct = scorer.score_prepared(again), scorer.score(images, captions)
    assert np.array_equal(scored.scores, direct.scores)
    assert np.array_equal(scored.image_embeddings, direct.image_embeddings)
    assert np.array_equal(scored.text_embeddings, direct.text_embeddings)
    assert scored.truncated == direct.truncated == [False] * 8


def test_a_model_refuses_pixels_made_for_another(scorer, pairs):
    prepared = scorer.inputs.prepare(pairs[0][:2], pairs[1][:2])
    other = dict(prepared.preprocess)
    other["resize_mode"] = "squash"
    stranger = clip.PreparedBatch(
        prepared.pixels, prepared.tokens, prepared.truncated, clip.preprocess_signature(other)
    )
    with pytest.raises(ValueError, match="reached a model that expects"):
        scorer.score_prepared(stranger)


def test_a_pretrained_tags_preprocessing_reaches_the_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint: Path, pairs
) -> None:
    """A tag with its own mean, std, interpolation and resize mode: the workers' transform
    (from open_clip's registry, no weights) is the one open_clip gives the loaded model."""
    name = "paircurate-ref-tagged"  # the reference architecture under a name with a tag
    architecture = tmp_path / f"{name}.json"
    architecture.write_text(reference_scorer.CONFIG_PATH.read_text())
    open_clip.add_model_config(architecture)
    tag = {
        "file": str(checkpoint), "url": "", "hf_hub": "", "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.5, 0.75), "interpolation": "bilinear", "resize_mode": "squash",
    }  # fmt: skip
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"squashed": tag})
    config = ClipConfig(clip_model=name, clip_pretrained="squashed", clip_device="cpu")
    model = load_clip(config)
    inputs = clip.load_clip_inputs(config)
    assert dict(inputs.signature)["resize_mode"] == "squash"
    assert inputs.signature == model.inputs.signature
    wide = pairs[0][-1]  # 130 x 70: squashing and cropping differ
    assert torch.equal(inputs.preprocess_images([wide]), model.preprocess_images([wide]))


def test_auto_says_which_device_it_chose(monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("INFO", logger=clip.__name__):
        assert clip.resolve_device("auto") == torch.device("cpu")
    assert "--clip-device auto: torch sees no CUDA GPU here, scoring on the CPU" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "NVIDIA L4")
    with caplog.at_level("INFO", logger=clip.__name__):
        assert clip.resolve_device("auto") == torch.device("cuda")
    assert "--clip-device auto: scoring on cuda (NVIDIA L4)" in caplog.text


def test_inputs_need_no_local_checkpoint() -> None:
    """Workers make inputs before the model's loader has copied a bucket's checkpoint."""
    config = ClipConfig(
        clip_model=MODEL_NAME, clip_checkpoint="gs://bucket/ref.pt", clip_device="cpu"
    )
    inputs = clip.load_clip_inputs(config)
    assert dict(inputs.signature)["size"] == (64, 64) and inputs.context_length == 77
