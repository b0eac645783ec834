"""`paircurate eval` on the reference scorer (a tiny trained model) and a small evaluation set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from clip_benchmark.metrics.zeroshot_classification import zero_shot_classifier

from paircurate.evaluation import metrics
from paircurate.pipeline.cli import main
from paircurate.synthweb.evalset import class_names, write_evalset
from paircurate.synthweb.reference_training import load_reference_scorer

IMAGES = 30


@pytest.fixture(scope="module")
def evalset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evalset")
    write_evalset(folder, IMAGES, seed=4, side=64)
    return folder


@pytest.fixture(scope="module")
def scorer():
    return load_reference_scorer()


def run_eval(output: Path, *args: str) -> dict:
    code = main(
        ["eval", "--model", "paircurate-ref", "--device", "cpu", *args, "--output", str(output)]
    )
    assert code == 0
    return json.loads(output.read_text())


def direct_top1(scorer, folder: Path, task: str, templates: list[str]) -> tuple[float, np.ndarray]:
    """top-1 from open_clip's own calls: prompt ensembling done by hand."""
    model, preprocess, tokenizer = scorer
    names = class_names(task, "en")
    with torch.no_grad():
        weights = []
        for name in names:
            features = model.encode_text(tokenizer([t.format(name) for t in templates]))
            mean = torch.nn.functional.normalize(features, dim=-1).mean(dim=0)
            weights.append(mean / mean.norm())
        samples = list(
            wds.WebDataset(str(folder / "evalset-00000.tar"), shardshuffle=False).decode("pil")
        )
        pixels = torch.stack([preprocess(sample["jpg"].convert("RGB")) for sample in samples])
        images = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
    predicted = (images @ torch.stack(weights).T).argmax(dim=1).numpy()
    targets = np.array([sample["json"][task] for sample in samples])
    return float((predicted == targets).mean()), predicted


@pytest.mark.parametrize("task", ["colour", "object"])
def test_top1_equals_a_direct_computation(evalset, scorer, tmp_path, task):
    result = run_eval(tmp_path / "result.json", "--zeroshot", str(evalset), "--task", task)
    shot = result["zeroshot"]
    templates = [t.replace("{c}", "{}") for t in shot["templates"]]
    expected, _ = direct_top1(scorer, evalset, task, templates)
    assert shot["images"] == IMAGES
    assert shot["classes"] == len(class_names(task, "en"))
    assert shot["top1"] == pytest.approx(expected, abs=1e-9)


def test_given_templates_are_the_ones_applied(evalset, scorer, tmp_path):
    templates = ["a {} shape", "{} on a plain background"]
    result = run_eval(
        tmp_path / "r.json", "--zeroshot", str(evalset), "--task", "colour",
        *[arg for template in templates for arg in ("--template", template)],
    )  # fmt: skip
    assert result["zeroshot"]["templates"] == ["a {c} shape", "{c} on a plain background"]
    expected, _ = direct_top1(scorer, evalset, "colour", templates)
    assert result["zeroshot"]["top1"] == pytest.approx(expected, abs=1e-9)


def test_class_embeddings_match_clip_benchmark(scorer):
    model, _, tokenizer = scorer
    names, templates = class_names("object", "de")[:7], ["Foto: {c}", "Zeichnung: {c}"]
    anchor = zero_shot_classifier(model, tokenizer, names, templates, "cpu", amp=False).T.numpy()

    def embed(texts):
        with torch.no_grad():
            return model.encode_text(tokenizer(texts), normalize=True).numpy()

    np.testing.assert_allclose(metrics.class_embeddings(embed, names, templates), anchor, atol=1e-5)


def test_image_folder_tree_gives_the_same_top1(evalset, tmp_path):
    tree = tmp_path / "tree"
    names = class_names("colour", "en")
    for sample in wds.WebDataset(str(evalset / "evalset-00000.tar"), shardshuffle=False):
        folder = tree / names[json.loads(sample["json"])["colour"]]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{sample['__key__']}.jpg").write_bytes(sample["jpg"])
    (tmp_path / "colours.txt").write_text("\n".join(names))
    from_tree = run_eval(
        tmp_path / "tree.json",
        "--zeroshot",
        str(tree),
        "--classnames",
        str(tmp_path / "colours.txt"),
    )
    from_shards = run_eval(tmp_path / "shards.json", "--zeroshot", str(evalset), "--task", "colour")
    assert from_tree["zeroshot"]["images"] == IMAGES
    assert from_tree["zeroshot"]["top1"] == from_shards["zeroshot"]["top1"]


def test_retrieval_and_result_in_a_run_folder(evalset, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "shards").mkdir(parents=True)
    shutil.copy(evalset / "evalset-00000.tar", run / "shards" / "00000.tar")
    result = run_eval(tmp_path / "ret.json", "--retrieval", str(run), "--retrieval-limit", "20")
    found = result["retrieval"]
    assert found["pairs"] == 20
    for k in (1, 5, 10):
        assert 0.0 <= found[f"image_retrieval_recall@{k}"] <= 1.0
    assert found["text_retrieval_recall@10"] >= found["text_retrieval_recall@1"]
    assert "zeroshot" not in result
    assert "retrieval:" in capsys.readouterr().out


def test_bad_requests_are_clear_errors(evalset, tmp_path, capsys):
    args = [
        "eval",
        "--model",
        "paircurate-ref",
        "--device",
        "cpu",
        "--output",
        str(tmp_path / "x.json"),
    ]
    assert main(args) == 2
    assert "--zeroshot SOURCE, --retrieval SOURCE" in capsys.readouterr().err
    assert main([*args, "--zeroshot", str(evalset), "--task", "size"]) == 2
    assert "has tasks object, shape, colour, count" in capsys.readouterr().err
    assert main([*args, "--zeroshot", str(tmp_path / "missing")]) == 2
    assert "no WebDataset .tar files" in capsys.readouterr().err
