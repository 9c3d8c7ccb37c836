"""Run the real bundle configs through ``python -m monai.bundle run`` in a subprocess (tests only)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "cxr_colorization" / "configs"
TINY = {"max_epochs": 1, "image_size": 32, "backbone": "resnet18", "pretrained": "false", "batch_size": 8}


def bundle_cmd(
    configs: Sequence[str], overrides: dict[str, object], launcher: Sequence[str] | None = None
) -> list[str]:
    files = [str(CONFIGS / c) for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    cmd = list(launcher or [sys.executable]) + ["-m", "monai.bundle", "run", "--config_file", config_arg]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def bundle_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MCOLOR_CACHE": str(cache), "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
                "PYTHONUNBUFFERED": "1"})
    return env


def run_bundle(configs: Sequence[str], overrides: dict[str, object], cache: Path, timeout: int = 300,
               launcher: Sequence[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run and return the completed process; raise with the output tail if it failed."""
    proc = subprocess.run(bundle_cmd(configs, overrides, launcher), cwd=REPO, env=bundle_env(cache),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"bundle run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
