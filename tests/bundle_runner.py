"""Run the real bundle configs through ``python -m monai.bundle run`` in a subprocess (tests only).

Every run trains or reads a *copy* of the repository's bundle (:func:`new_bundle`), never the repository's own
folder: training writes ``models/`` and rewrites ``configs/metadata.json`` of the bundle it runs in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mcolor.bundle.installed import init_bundle

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "cxr_colorization"
CONFIGS = BUNDLE / "configs"
TINY = {"max_epochs": 1, "image_size": 32, "backbone": "resnet18", "pretrained": "false", "batch_size": 8,
        "progress": "false", "export_torchscript": "false"}


def new_bundle(dest: Path) -> Path:
    """A fresh, untrained copy of the repository's bundle at ``dest``."""
    return init_bundle(dest, source=BUNDLE)


def copy_bundle(src: Path, dest: Path) -> Path:
    """A copy of a (trained) bundle folder, weights included, that a test may modify."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("eval"))
    return dest


def bundle_cmd(configs: Sequence[str], overrides: dict[str, object], bundle: Path,
               launcher: Sequence[str] | None = None) -> list[str]:
    """``python -m monai.bundle run`` of ``bundle``'s configs, with ``bundle_root`` pointing at it."""
    files = [str(Path(bundle) / "configs" / c) for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    cmd = list(launcher or [sys.executable]) + ["-m", "monai.bundle", "run", "--config_file", config_arg]
    for key, value in {"bundle_root": bundle, **overrides}.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def bundle_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MCOLOR_CACHE": str(cache), "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
                "PYTHONUNBUFFERED": "1"})
    return env


def run_bundle(configs: Sequence[str], overrides: dict[str, object], cache: Path, bundle: Path, timeout: int = 300,
               launcher: Sequence[str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run and return the completed process; raise with the output tail if it failed."""
    proc = subprocess.run(bundle_cmd(configs, overrides, bundle, launcher), cwd=cwd, env=bundle_env(cache),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"bundle run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
