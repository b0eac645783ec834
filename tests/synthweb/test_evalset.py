"""The labelled evaluation set: balanced labels, four languages, and held out from every web."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import webdataset as wds
from PIL import Image

from paircurate.synthweb import SyntheticWeb, WebMix
from paircurate.synthweb.captions import LANGUAGES
from paircurate.synthweb.evalset import TASKS, class_names, iter_samples, write_evalset
from paircurate.synthweb.web import NO_IMAGE_LABELS


def pixel_hash(body: bytes) -> str:
    with Image.open(io.BytesIO(body)) as image:
        return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


def test_eval_set_shares_no_image_with_a_web_of_another_seed():
    web = SyntheticWeb(400, seed=5, mix=WebMix())
    web_bytes = {
        hashlib.sha256(web.image_bytes(i)).hexdigest()
        for i in range(len(web))
        if web.label(i) not in NO_IMAGE_LABELS
    }
    samples = list(iter_samples(120, seed=3, side=96))
    eval_bytes = {hashlib.sha256(sample.jpeg).hexdigest() for sample in samples}
    assert len(eval_bytes) == len(samples)
    assert not eval_bytes & web_bytes
    # nor the same scene: no eval image draws a web scene's layout
    web_layouts = {web.scene(web.entry(i).scene).layout_seed for i in range(len(web))}
    assert not {sample.scene.layout_seed for sample in samples} & web_layouts


def test_sets_of_two_seeds_differ_and_one_seed_repeats():
    first = [s.jpeg for s in iter_samples(10, seed=1, side=64)]
    assert first == [s.jpeg for s in iter_samples(10, seed=1, side=64)]
    assert not set(first) & {s.jpeg for s in iter_samples(10, seed=2, side=64)}


def test_written_set_reads_back_with_balanced_labels(tmp_path):
    summary = write_evalset(tmp_path, 120, seed=0, side=64)
    samples = list(wds.WebDataset(summary["shard"], shardshuffle=False).decode())
    assert len(samples) == 120
    objects = [int(s["cls"]) for s in samples]
    assert sorted(set(objects)) == list(range(60)) and all(objects.count(c) == 2 for c in range(60))
    first = samples[0]
    assert first["json"]["names"]["object"] == class_names("object", "en")[int(first["cls"])]
    assert first["txt"] and Image.open(io.BytesIO(first["jpg"])).size == (64, 64)
    classes = json.loads((tmp_path / "classes.json").read_text())["tasks"]
    assert list(classes) == list(TASKS)
    for task, entry in classes.items():
        assert set(entry["classnames"]) == set(LANGUAGES) == set(entry["templates"])
        sizes = {len(names) for names in entry["classnames"].values()}
        assert sizes == {len(class_names(task, "en"))}
    assert classes["object"]["classnames"]["de"][:2] == ["roter Kreis", "rotes Quadrat"]
    assert classes["object"]["classnames"]["es"][3] == "estrella roja"
    assert classes["colour"]["label_field"] == "json.colour"
    backgrounds = {s["json"]["background"] for s in samples}
    assert all(s["json"]["background"] == s["json"]["scene"]["background"] for s in samples)
    assert len(backgrounds) == 10 and all(
        s["json"]["background"] != s["json"]["names"]["colour"] for s in samples
    )


def test_neutral_background_keeps_the_scene_and_paints_it_grey():
    web_like = list(iter_samples(12, seed=3, side=64))
    neutral = list(iter_samples(12, seed=3, side=64, background="neutral"))
    assert {s.scene.background for s in neutral} == {"grey"}
    assert all(s.scene.background != "grey" for s in web_like)
    for a, b in zip(web_like, neutral, strict=True):
        assert (a.key, a.labels, a.scene.shape, a.scene.colour) == (
            b.key,
            b.labels,
            b.scene.shape,
            b.scene.colour,
        )
        assert a.jpeg != b.jpeg
    corner = Image.open(io.BytesIO(neutral[0].jpeg)).convert("RGB")
    width, height = corner.size
    # Somewhere off the shapes and off the black padding, the picture is mid-grey.
    pixels = [corner.getpixel((x, y)) for x in range(width) for y in range(height)]
    grey = [p for p in pixels if all(90 <= c <= 170 for c in p) and max(p) - min(p) < 40]
    assert len(grey) > len(pixels) // 5


def test_unknown_background_is_refused():
    with pytest.raises(ValueError, match="background="):
        list(iter_samples(1, seed=0, background="blue"))
