"""The container image, read from deploy/Dockerfile: Docker cannot run here, so we read it.

tests/pipeline/test_portable.py replays what the image does at run time: a
worker started in the image's final working directory, with paircurate from
the wheel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def read_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", path.read_text())
    arguments, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base, name or None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        elif keyword == "ARG":
            key, _, default = args.partition("=")
            arguments[key] = default
    return arguments, stages


ARGUMENTS, STAGES = read_dockerfile(ROOT / "deploy" / "Dockerfile")
FINAL = STAGES[-1]


def expand(value: str, arguments: dict[str, str] = ARGUMENTS) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], value)


def package_dirs() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(project["tool"]["setuptools"]["package-dir"].values())


def test_every_base_image_is_pinned():
    names = {stage.name for stage in STAGES}
    for stage in STAGES:
        base = expand(stage.base)
        if base in names:  # an earlier stage
            continue
        assert ":" in base.rsplit("/", 1)[-1] or "@sha256:" in base, base
        assert not base.endswith(":latest"), base


def test_the_final_image_installs_the_wheel_and_no_source_tree():
    runs = " ".join(FINAL.all("RUN"))
    assert re.search(r"pip install [^&]*\.whl", runs)
    copied = " ".join(FINAL.all("COPY"))
    for folder in package_dirs():
        assert not re.search(rf"(^|\s)\.?/?{folder}(/|\s)", copied), folder
    assert "--from=wheel" in copied


def test_the_wheel_stage_has_every_folder_pyproject_maps():
    (wheel,) = [stage for stage in STAGES if stage.name == "wheel"]
    sources = {args.split()[0] for args in wheel.all("COPY")}
    assert package_dirs() <= sources
    assert any("pip wheel" in run for run in wheel.all("RUN"))


def test_the_dockerignore_lets_the_sources_in():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][0] == "*"
    for folder in package_dirs():
        assert f"!{folder}/" in lines, folder
    assert "!deploy/dataflow/main.py" in lines


def final_workdir() -> str:
    return FINAL.all("WORKDIR")[-1]


def test_the_final_working_directory_holds_nothing_named_paircurate():
    workdir = final_workdir()
    after = FINAL.instructions[FINAL.instructions.index(("WORKDIR", workdir)) :]
    destinations = [args.split()[-1] for kw, args in FINAL.instructions if kw in ("COPY", "ADD")]
    inside = [d for d in destinations if d.startswith(workdir + "/") or not d.startswith("/")]
    shadowing = {"paircurate", "paircurate.py"}
    assert not [d for d in inside if shadowing & set(Path(d.removeprefix(workdir)).parts)]
    checks = [args for kw, args in after if kw == "RUN"]
    assert any('python -c "import paircurate.pipeline.job"' in run for run in checks)


def test_the_flex_template_entry_point_is_outside_the_working_directory():
    env = dict(args.split("=", 1) for args in FINAL.all("ENV"))
    entry = env["FLEX_TEMPLATE_PYTHON_PY_FILE"]
    assert not entry.startswith(final_workdir() + "/")
    assert any(args.endswith(entry) for args in FINAL.all("COPY"))


@pytest.mark.parametrize(
    ("variant", "index"), [("cpu", "download.pytorch.org/whl/cpu"), ("gpu", None)]
)
def test_cpu_and_gpu_variants_install_their_torch(variant, index):
    (stage,) = [s for s in STAGES if s.name == f"torch_{variant}"]
    runs = " ".join(stage.all("RUN"))
    assert "torch==2.14.1" in runs and "torchvision==0.29.1" in runs
    assert (index in runs) if index else ("--index-url" not in runs)
    assert expand(FINAL.base, {**ARGUMENTS, "VARIANT": variant}) == stage.name


def test_installs_are_checked_against_beams_base_image():
    (base,) = [s for s in STAGES if s.name == "beam_base"]
    assert any(
        "pip list --format=freeze > /opt/beam-base-constraints.txt" in r for r in base.all("RUN")
    )
    installs = [r for s in STAGES[1:] for r in s.all("RUN") if "pip install" in r]
    assert installs
    assert all("--constraint /opt/beam-base-constraints.txt" in r for r in installs)
    assert any("pip check" in r for r in FINAL.all("RUN"))
