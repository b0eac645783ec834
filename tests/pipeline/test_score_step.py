"""The Score step's shape and its launcher checks: own workers, an accelerator hint where asked,
checkpoints copied once per machine, and a launcher that checks the model without loading it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import FileMetadata, FileSystem
from apache_beam.portability.common_urns import resource_hints
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from paircurate.pipeline.ingest.read import plan_inputs
from paircurate.pipeline.job import build
from paircurate.pipeline.run import parse_args
from paircurate.pipeline.scoring import checks
from paircurate.pipeline.scoring.weights import local_checkpoint
from paircurate.schemas.config import ConfigError
from paircurate.synthweb import SyntheticWeb, write_manifest
from paircurate.transforms.scoring.reference_scorer import CHECKPOINT_PATH

ACCELERATOR = "type:nvidia-l4;count:1;install-nvidia-driver"
DATAFLOW = ["--runner", "DataflowRunner", "--project", "p", "--region", "r"]


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("pairs")
    return write_manifest(SyntheticWeb(4, seed=3), "http://127.0.0.1:9", str(folder / "p.parquet"))


def job_proto(pairs_file: str, tmp_path: Path, *extra: str):
    """The job graph as the runner API sees it (what Dataflow receives), built, not run."""
    config, _ = parse_args(
        ["--input", pairs_file, "--output", str(tmp_path / "out"), "--clip-model",
         "paircurate-ref", *extra]
    )  # fmt: skip
    pipeline = beam.Pipeline(runner=FnApiRunner())
    build(pipeline, config, plan_inputs(config.inputs), {})
    return pipeline.to_runner_api()


def accelerators(proto, prefix: str) -> dict[str, bytes | None]:
    """The accelerator hint of every transform under ``prefix`` that runs in an environment."""
    found = {}
    for transform in proto.components.transforms.values():
        if transform.unique_name.startswith(prefix) and transform.environment_id:
            hints = proto.components.environments[transform.environment_id].resource_hints
            found[transform.unique_name] = hints.get(resource_hints.ACCELERATOR.urn)
    return found


def test_the_accelerator_hint_lands_on_score_only(pairs_file, tmp_path):
    proto = job_proto(pairs_file, tmp_path, "--clip-accelerator", ACCELERATOR)
    score = accelerators(proto, "Score/")
    for part in ("Score/Batches", "Score/Tensors", "Score/RunInference", "Score/ByChunk"):
        assert any(name.startswith(part) for name in score), part
    assert score and set(score.values()) == {ACCELERATOR.encode()}
    for step in ("Fetch/", "ToScore/", "Read", "Captions/", "Write/", "Decide/"):
        hinted = {name: value for name, value in accelerators(proto, step).items() if value}
        assert hinted == {}, step
    assert accelerators(proto, "Fetch/")  # Fetch runs in an environment, just not a GPU one


def test_without_the_option_no_step_asks_for_an_accelerator(pairs_file, tmp_path):
    proto = job_proto(pairs_file, tmp_path)
    everything = accelerators(proto, "")
    assert everything and not any(everything.values())


def test_score_reads_chunk_indexes_behind_a_fusion_break(pairs_file, tmp_path):
    proto = job_proto(pairs_file, tmp_path)
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert "ToScore" in names and any(n.startswith("ToScore/") for n in names)
    reshuffle = next(t for t in proto.components.transforms.values() if t.unique_name == "ToScore")
    score = next(t for t in proto.components.transforms.values() if t.unique_name == "Score")
    assert set(reshuffle.outputs.values()) == set(score.inputs.values())


# --- launcher checks ------------------------------------------------------------------------


def config_of(*args: str):
    config, beam_args = parse_args(["--input", "in.parquet", "--output", "gs://b/out", *args])
    return config, beam_args


def test_a_bad_model_name_fails_without_importing_torch():
    probe = (
        "import sys\n"
        "from paircurate.pipeline.run import parse_args\n"
        "from paircurate.pipeline.scoring.checks import check_clip\n"
        "from paircurate.schemas.config import ConfigError\n"
        "config, args = parse_args(['--input', 'x', '--output', 'y', '--clip-model', 'ViT-B-99'])\n"
        "try:\n"
        "    check_clip(config, args)\n"
        "except ConfigError as error:\n"
        "    print(str(error).splitlines()[0][:80])\n"
        "print('torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    message, loaded = done.stdout.strip().splitlines()[-2:]
    assert message.startswith("--clip-model 'ViT-B-99' is not an open_clip model (did you mean")
    assert loaded == "False False"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clip-model", "ViT-B-32", "--clip-pretrained", "no_such_tag"],
         "--clip-pretrained 'no_such_tag' is not an open_clip tag for ViT-B-32 (its tags:"),
        (["--clip-model", "ViT-B-32", "--clip-pretrained", ""],
         "--clip-pretrained is empty, so ViT-B-32 would score with random weights"),
        (["--clip-model", "hf-hub:org/name", "--clip-checkpoint", "x.pt"],
         "--clip-checkpoint cannot be combined with --clip-model hf-hub:org/name"),
        (["--clip-model", "local-dir:/nowhere"], "--clip-model local-dir:/nowhere: /nowhere holds"),
        (["--clip-model", "ViT-B-32", "--clip-checkpoint", "/nowhere/x.pt"],
         "--clip-checkpoint /nowhere/x.pt: no such file."),
    ],
)  # fmt: skip
def test_launcher_refuses_what_the_workers_could_not_load(args, message):
    config, beam_args = config_of(*args)
    with pytest.raises(ConfigError) as raised:
        checks.check_clip(config, beam_args)
    assert str(raised.value).startswith(message)


def test_known_models_tags_and_checkpoints_pass():
    for args in (
        ["--clip-model", "ViT-B-32"],  # laion2b_s34b_b79k, the default tag
        ["--clip-model", "ViT-B/32", "--clip-pretrained", "openai"],
        ["--clip-model", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"],
    ):  # remote workers: their own caches hold the weights, not this machine's
        checks.check_clip(config_of(*args)[0], DATAFLOW)
    for args in (
        ["--clip-model", "paircurate-ref"],
        ["--clip-model", "ViT-B-32", "--clip-checkpoint", str(CHECKPOINT_PATH)],
        ["--clip-model", "none", "--clip-device", "cuda"],
    ):
        checks.check_clip(*config_of(*args))


@pytest.fixture
def hub_cache(monkeypatch, tmp_path) -> Path:
    """An empty Hugging Face cache and a Hub that does not answer."""
    from huggingface_hub import constants

    from paircurate.transforms.scoring import clip_names

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(clip_names, "hub_reachable", lambda host: False)
    return tmp_path / "hub"


def test_a_local_run_needs_the_tags_weights_at_hand(hub_cache):
    config, beam_args = config_of("--clip-model", "ViT-B-32")
    with pytest.raises(ConfigError, match="the weights of ViT-B-32 laion2b_s34b_b79k are not in"):
        checks.check_clip(config, beam_args)
    # Once in the cache (as open_clip's download leaves them), the launcher is satisfied.
    repo = hub_cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    (repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors").write_bytes(b"weights")
    checks.check_clip(config, beam_args)


def test_a_text_tower_from_transformers_without_it_is_refused_before_submission(monkeypatch):
    from paircurate.transforms.scoring import clip_names

    real = clip_names.importlib.util.find_spec
    monkeypatch.setattr(
        clip_names.importlib.util, "find_spec",
        lambda name, *a: None if name == "transformers" else real(name, *a),
    )  # fmt: skip
    config, _ = config_of("--clip-model", "ViT-B-16-SigLIP", "--clip-pretrained", "webli")
    with pytest.raises(ConfigError, match=r"pip install 'paircurate\[hf-text\]'"):
        checks.check_clip(config, DATAFLOW)


def test_a_laptop_checkpoint_with_a_remote_runner_is_refused_before_submission():
    config, _ = config_of("--clip-model", "ViT-B-32", "--clip-checkpoint", str(CHECKPOINT_PATH))
    with pytest.raises(ConfigError, match="is a path on this machine, which the workers"):
        checks.check_clip(config, DATAFLOW)
    checks.check_clip(config, ["--runner", "PortableRunner", "--environment_type", "LOOPBACK"])


def test_cuda_needs_a_gpu_here_or_an_accelerator_on_dataflow(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, beam_args = config_of("--clip-model", "paircurate-ref", "--clip-device", "cuda")
    with pytest.raises(ConfigError, match="a local runner\\) and torch sees no CUDA GPU here"):
        checks.check_clip(config, beam_args)
    with pytest.raises(ConfigError, match="on Dataflow needs GPU workers for the Score step"):
        checks.check_clip(config, DATAFLOW)
    with_hint, _ = config_of(
        "--clip-model", "paircurate-ref", "--clip-device", "cuda", "--clip-accelerator", ACCELERATOR
    )
    checks.check_clip(with_hint, DATAFLOW)
    service = ["--dataflow_service_options", f"worker_accelerator={ACCELERATOR}"]
    checks.check_clip(config, [*DATAFLOW, *service])


def test_the_accelerator_option_is_validated():
    with pytest.raises(ConfigError, match="name the GPU"):
        config_of("--clip-accelerator", "nvidia-l4")
    with pytest.raises(ConfigError, match="GPUs that --clip-device cpu would not use"):
        config_of("--clip-accelerator", ACCELERATOR, "--clip-device", "cpu")


def test_runs_here():
    assert checks.runs_here([]) and checks.runs_here(["--runner=DirectRunner"])
    assert checks.runs_here(["--runner", "FnApiRunner", "--direct_num_workers", "2"])
    assert not checks.runs_here(DATAFLOW)
    assert not checks.runs_here(["--runner", "FlinkRunner"])


# --- checkpoints where the workers are -------------------------------------------------------


class MemoryFileSystem(FileSystem):
    """A remote store held in memory: what a worker sees of gs:// or s3://, offline."""

    files: dict[str, bytes] = {}
    opened: list[str] = []

    @classmethod
    def scheme(cls) -> str:
        return "memtest"

    def join(self, base, *parts):
        return "/".join([base.rstrip("/"), *parts])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, data in sorted(self.files.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), 1_700_000_000.0)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        self.opened.append(path)
        return io.BytesIO(self.files[path])

    def exists(self, path):
        return path in self.files

    def size(self, path):
        return len(self.files[path])

    def last_updated(self, path):
        return 1_700_000_000.0

    def metadata(self, path):
        return FileMetadata(path, len(self.files[path]), 1_700_000_000.0)

    def checksum(self, path):
        return str(len(self.files[path]))

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        raise NotImplementedError

    def copy(self, source_file_names, destination_file_names):
        raise NotImplementedError

    def rename(self, source_file_names, destination_file_names):
        raise NotImplementedError

    def delete(self, paths):
        raise NotImplementedError


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setattr(MemoryFileSystem, "files", {})
    monkeypatch.setattr(MemoryFileSystem, "opened", [])
    return MemoryFileSystem


def test_a_remote_checkpoint_is_copied_once_per_machine(store, tmp_path):
    data = bytes(range(256)) * 4099
    store.files["memtest://bucket/models/ref.pt"] = data
    results: list[str] = []

    def worker() -> None:
        results.append(local_checkpoint("memtest://bucket/models/ref.pt", tmp_path))

    workers = [threading.Thread(target=worker) for _ in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert len(results) == 6  # a worker that raised would be missing
    assert len(set(results)) == 1 and Path(results[0]).read_bytes() == data
    assert Path(results[0]).name == "ref.pt"
    assert store.opened == ["memtest://bucket/models/ref.pt"]  # one copy, six workers
    assert not [p for p in Path(results[0]).parent.iterdir() if p.name.endswith(".part")]
    # A new file under the same name is a new cache entry, never the stale copy.
    store.files["memtest://bucket/models/ref.pt"] = b"retrained"
    again = local_checkpoint("memtest://bucket/models/ref.pt", tmp_path)
    assert again != results[0] and Path(again).read_bytes() == b"retrained"


def test_a_local_checkpoint_is_used_where_it_is(store, tmp_path):
    path = str(CHECKPOINT_PATH)
    assert local_checkpoint(path, tmp_path) == path
    assert not list(tmp_path.iterdir()) and store.opened == []


def test_a_missing_remote_checkpoint_says_so(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="--clip-checkpoint memtest://bucket/x.pt"):
        local_checkpoint("memtest://bucket/x.pt", tmp_path)


def test_the_launcher_checks_a_remote_checkpoint_through_beam(store):
    store.files["memtest://bucket/ref.pt"] = CHECKPOINT_PATH.read_bytes()
    config, _ = config_of("--clip-model", "paircurate-ref", "--clip-checkpoint",
                          "memtest://bucket/ref.pt")  # fmt: skip
    checks.check_clip(config, DATAFLOW)
    missing, _ = config_of("--clip-model", "paircurate-ref", "--clip-checkpoint",
                           "memtest://bucket/gone.pt")  # fmt: skip
    with pytest.raises(ConfigError, match="--clip-checkpoint memtest://bucket/gone.pt: no such"):
        checks.check_clip(missing, DATAFLOW)
    assert store.opened == []  # checked, not read


def test_stats_record_the_accelerator(pairs_file, tmp_path):
    from paircurate.pipeline.run import recorded_options

    config, _ = parse_args(
        ["--input", pairs_file, "--output", str(tmp_path), "--clip-accelerator", ACCELERATOR]
    )
    assert json.loads(json.dumps(recorded_options(config)))["clip"]["clip_accelerator"] == (
        ACCELERATOR
    )


# --- the step's DoFns, called directly --------------------------------------------------------


def test_workers_make_the_tensors_and_the_model_scores_them_as_one_process_would():
    from PIL import Image, ImageDraw

    from paircurate.pipeline.scoring.score_pairs import ClipModelHandler, PrepareBatchDoFn
    from paircurate.schemas.config import ClipConfig
    from paircurate.transforms.scoring.clip import load_clip

    pairs, images = [], []
    for number in range(5):
        image = Image.new("RGB", (96, 64), (250, 250, 250))
        ImageDraw.Draw(image).ellipse((20, 4, 70, 54), fill=(40 * number, 90, 200))
        stream = io.BytesIO()
        image.save(stream, "PNG")
        box = (16, 0, 80, 64) if number % 2 else None  # border padding around the picture
        pairs.append((f"uid{number}", stream.getvalue(), f"{number} blue circles", box))
        images.append(image.crop(box) if box else image)
    config = ClipConfig(clip_model="paircurate-ref", clip_device="cpu", write_embeddings=True)
    prepare = PrepareBatchDoFn(config)
    prepare.setup()
    [(key, prepared)] = list(prepare.process(("chunk-key", pairs)))
    handler = ClipModelHandler(config)
    [records] = list(handler.run_inference([prepared], handler.load_model()))
    direct = load_clip(config).score(images, [caption for _, _, caption, _ in pairs])
    assert key == "chunk-key" and [r["uid"] for r in records] == [p[0] for p in pairs]
    assert [r["clip_score"] for r in records] == [float(s) for s in direct.scores]
    assert records[3]["image_embedding"] == direct.image_embeddings[3].astype("float16").tobytes()
    assert all(r["caption_truncated"] is False for r in records)
