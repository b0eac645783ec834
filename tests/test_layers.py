"""The layer rules, checked over the source of every module.

- ``schemas`` imports nothing of ours;
- ``transforms`` never imports ``apache_beam``, ``pipeline`` or ``synthweb``;
- ``pipeline`` never imports ``tests`` or ``bench``;
- ``report`` never imports ``apache_beam``.

Imports are read with ``ast``, so an import inside a function counts as much
as one at the top of the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layer folder -> prefixes of the modules it must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "schemas": (
        "paircurate.transforms",
        "paircurate.pipeline",
        "paircurate.report",
        "paircurate.synthweb",
        "tests",
        "bench",
    ),
    "transforms": ("apache_beam", "paircurate.pipeline", "paircurate.synthweb"),
    "pipeline": ("tests", "bench"),
    "report": ("apache_beam",),
}

# Known breaches, to be removed once fixed: module path -> the forbidden package it imports.
# None today; an entry here must name the module and the package, and goes once it is fixed.
KNOWN_EXCEPTIONS: dict[str, str] = {}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, anywhere in it, relative imports made absolute.

    ``package`` is the dotted package the source lives in (for ``from . import x``).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # "from paircurate import pipeline" imports paircurate.pipeline
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def breaches(source: str, layer: str, package: str) -> set[str]:
    """The imports of ``source`` that the rules of ``layer`` forbid."""
    forbidden = FORBIDDEN[layer]
    if layer == "schemas":
        # Anything of ours outside schemas is forbidden, not just the layers listed.
        forbidden = (*forbidden, "paircurate")
    return {
        module
        for module in imported_modules(source, package)
        if any(_within(module, f) for f in forbidden)
        and not (layer == "schemas" and module.startswith("paircurate.schemas"))
        and module != "paircurate"
    }


def modules_of(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def package_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    return ".".join(("paircurate", *relative.parts[:-1]))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    modules = modules_of(layer)
    assert len(modules) > 3, f"no modules found under {layer}/"
    found = []
    for path in modules:
        name = str(path.relative_to(ROOT))
        for module in breaches(path.read_text(encoding="utf-8"), layer, package_of(path)):
            if not _within(module, KNOWN_EXCEPTIONS.get(name, "-")):
                found.append(f"{name} imports {module}")
    assert found == []


def test_known_exceptions_still_exist() -> None:
    """An exception that no longer applies is removed from the list, not kept as dead weight."""
    for name, package in KNOWN_EXCEPTIONS.items():
        path = ROOT / name
        if not path.exists():
            pytest.fail(f"{name} is gone: remove its exception")
        found = breaches(path.read_text(encoding="utf-8"), Path(name).parts[0], package_of(path))
        assert any(_within(module, package) for module in found), (
            f"{name} no longer imports {package}: remove its exception"
        )


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("schemas", "from paircurate.transforms.output import ledger", "paircurate.transforms"),
        ("schemas", "from paircurate import pipeline", "paircurate.pipeline"),
        ("schemas", "from .. import report", "paircurate.report"),
        ("transforms", "import apache_beam as beam", "apache_beam"),
        ("transforms", "def f():\n    from apache_beam.metrics import Metrics\n", "apache_beam"),
        ("transforms", "from paircurate.pipeline import filesystem", "paircurate.pipeline"),
        ("transforms", "from paircurate.synthweb.captions import describe", "paircurate.synthweb"),
        ("transforms", "from ...pipeline import job", "paircurate.pipeline"),
        ("pipeline", "from tests.transforms.helpers import make_row", "tests"),
        ("pipeline", "class A:\n    def f(self):\n        import bench.e2e\n", "bench"),
        ("report", "import apache_beam", "apache_beam"),
    ],
)
def test_a_breach_is_found(layer: str, source: str, expected: str) -> None:
    package = {"schemas": "paircurate.schemas"}.get(layer, f"paircurate.{layer}.output")
    found = breaches(source, layer, package)
    assert any(_within(module, expected) for module in found), found


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("schemas", "from paircurate.schemas.codes import Status\nimport pyarrow"),
        ("schemas", "from . import codes"),
        ("transforms", "from paircurate.schemas.config import DedupConfig\nimport numpy"),
        ("transforms", "from paircurate.transforms.dedup import phash"),
        ("pipeline", "import apache_beam\nfrom paircurate.transforms.output import ledger"),
        ("report", "from paircurate.transforms.scoring.clip_filter import thresholds_for"),
    ],
)
def test_an_allowed_import_passes(layer: str, source: str) -> None:
    package = {"schemas": "paircurate.schemas"}.get(layer, f"paircurate.{layer}.output")
    assert breaches(source, layer, package) == set()
