"""The layering rules of docs/architecture.md, checked on the code itself.

* nothing under ``mcolor/inference/`` or ``mcolor/bundle/`` imports ``mcolor.engines`` (at module level or
  inside a function): using or sharing a trained model needs no training engine;
* ``mcolor infer``'s entry point, imported in a fresh interpreter, loads no training-only module, and a whole
  ``mcolor infer`` run on a bundle with ``models/model.ts`` imports neither MONAI nor timm (a structural check:
  start-up time itself is measured in bench/bench_coldstart.py);
* import paths that bundles written by earlier versions name still resolve;
* the package list in pyproject.toml is the package tree (setuptools cannot discover ``mcolor.bundles``);
* one reader of the machine's CPU (``mcolor.machine``): provenance, sweep records and benchmarks name it alike.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mcolor"
TRAINING_ONLY = ("ignite", "monai.handlers", "monai.engines", "mlflow", "matplotlib", "tensorboard",
                 "mcolor.engines")


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from`` statement in ``path`` names, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("layer", ["inference", "bundle"])
def test_inference_and_bundle_never_import_the_training_engine(layer: str) -> None:
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p) if m.startswith("mcolor.engines"))
                 for p in sorted((PACKAGE / layer).rglob("*.py"))}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    probe = PACKAGE / "inference" / "_probe_for_test.py"
    probe.write_text("def f():\n    from mcolor.engines import setup\n    from ..engines import metrics\n")
    try:
        found = imported_modules(probe)
    finally:
        probe.unlink()
    assert {"mcolor.engines", "mcolor.engines.setup", "mcolor.engines.metrics"} <= found


def fresh_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, timeout=300, check=True, cwd=REPO)
    return set(out.stdout.split())


@pytest.mark.slow
def test_infer_entry_point_loads_no_training_module() -> None:
    loaded = fresh_modules("import mcolor.cli.infer, mcolor.inference.runner, mcolor.inference.models")
    assert "mcolor.inference.runner" in loaded
    leaked = sorted(m for m in loaded if any(m == t or m.startswith(t + ".") for t in TRAINING_ONLY))
    assert not leaked


@pytest.mark.slow
def test_a_torchscript_infer_run_imports_neither_monai_nor_timm(trained_bundle: Path, radiographs_dir: Path,
                                                                tmp_path: Path) -> None:
    code = (f"from mcolor.cli import main\n"
            f"rc = main(['infer', {str(radiographs_dir)!r}, '--bundle', {str(trained_bundle)!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '--allow-non-dicom', '--no-progress'])\nassert rc == 0, rc")
    loaded = fresh_modules(code)
    assert "torch" in loaded and "mcolor.inference.engine" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("monai", "timm", "ignite", "matplotlib", "mlflow"))


def test_import_paths_of_earlier_versions_still_resolve() -> None:
    import importlib

    for dotted in ("mcolor.engines.setup.resolve_device", "mcolor.engines.setup.resolve_amp",
                   "mcolor.engines.setup.amp_kwargs", "mcolor.engines.setup.load_trained_model",
                   "mcolor.engines.ModelSpec", "mcolor.engines.OperatingPoint", "mcolor.engines.atomic.atomic_write",
                   "mcolor.engines.transfer.export_color_module", "mcolor.engines.transfer.load_color_module",
                   "mcolor.inference.batching.InferenceDataset", "mcolor.inference.batching.make_loader",
                   "mcolor.inference.models.load_checkpoint_model", "mcolor.transforms.Letterboxd",
                   "mcolor.transforms.LoadRadiographd"):
        module, _, name = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), dotted


def test_pyproject_lists_every_package() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    assert listed == tree | {"mcolor.bundles"}


def test_the_cpu_is_read_in_one_place_only() -> None:
    """Sweep records pair runs by the ``cpu`` the provenance wrote; a benchmark that read it another way (lscpu's
    "Model name" against /proc/cpuinfo's "model name") could name the same machine differently."""
    from mcolor.machine import cpu_model, environment

    readers = [p.relative_to(REPO).as_posix() for folder in ("mcolor", "bench") for p in (REPO / folder).rglob("*.py")
               if p.name != "machine.py" and any(k in p.read_text(encoding="utf-8").lower()
                                                  for k in ('"lscpu"', "/proc/cpuinfo"))]
    assert readers == []
    assert cpu_model() and environment()["cpu"] == cpu_model()
