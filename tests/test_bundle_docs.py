"""The bundle's user doc stays in step with its configs and metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "cxr_colorization"
README = BUNDLE / "docs" / "README.md"
CONFIGS = ("train.json", "evaluate.json", "inference.json")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*(.*?)\s*\|$")


def doc_tables() -> dict[str, dict[str, str]]:
    """``{config file: {id: default cell}}`` from the README's ``### <config>`` tables."""
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            tables[current] = {}
        elif current and (m := _ROW.match(line)):
            tables[current][m.group(1)] = m.group(2).strip()
    return tables


def literal(value: object) -> bool:
    """A plain default (not an expression, reference or object) that the doc must state exactly."""
    if isinstance(value, str):
        return not value.startswith(("$", "@", "%"))
    return value is None or isinstance(value, bool | int | float)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_top_level_id_is_documented(config: str) -> None:
    cfg = json.loads((BUNDLE / "configs" / config).read_text(encoding="utf-8"))
    table = doc_tables().get(config)
    assert table is not None, f"docs/README.md has no '### {config}' table"
    missing = [k for k in cfg if k not in table]
    assert not missing, f"{config} ids not documented in docs/README.md: {missing}"
    wrong = {k: (table[k], json.dumps(v)) for k, v in cfg.items()
             if literal(v) and table[k] != f"`{json.dumps(v)}`"}
    assert not wrong, f"{config}: documented default differs from the config (doc, config): {wrong}"


def test_intended_use_commands_and_references() -> None:
    text = README.read_text(encoding="utf-8")
    assert "research; not for clinical use" in text.lower()
    for command in ("mcolor bundle verify", "mcolor bundle pack", "mcolor bundle export-color",
                    "--color_init", "--freeze_color", "configs/train.json", "configs/evaluate.json",
                    "configs/inference.json"):
        assert command in text, command
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text(encoding="utf-8"))
    assert "arXiv:2005.10589" in text and "## References" in text
    assert len(meta["references"]) >= 1


def test_weights_are_not_tracked() -> None:
    """Weights never live in git: the source bundle ships none and lists none."""
    assert not any((BUNDLE / "models").glob("*.pt")) or _ignored(BUNDLE / "models" / "model.pt")
    assert "large_files: []" in (BUNDLE / "large_files.yml").read_text(encoding="utf-8")


def _ignored(path: Path) -> bool:
    import subprocess

    result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=BUNDLE, check=False)
    return result.returncode == 0
