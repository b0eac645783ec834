"""The labelled evaluation set: balanced labels, four languages, and held out from every web."""

from __future__ import annotations

import hashlib
import io
import json

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
