"""Data-scarcity subsets: train-only, nested across fractions, stratified, patient-grouped, deterministic."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mcolor.cli import main
from mcolor.data.builders import build_medmnist
from mcolor.data.manifests import Manifest, load_manifest, validate_manifest, write_manifest
from mcolor.data.subsample import subsample_manifest, write_subsample
from mcolor.errors import ConfigError, ManifestError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PNEUMONIA_NPZ = SHARED / "data" / "pneumoniamnist" / "pneumoniamnist_dev.npz"
FRACTIONS = (0.01, 0.05, 0.1, 0.25, 1.0)
SEEDS = (0, 1, 7)


@pytest.fixture(scope="module")
def pneumonia(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The real PneumoniaMNIST manifest with a carved 15 % test split."""
    if not PNEUMONIA_NPZ.is_file():
        pytest.skip(f"real data absent: {PNEUMONIA_NPZ}")
    return build_medmnist(PNEUMONIA_NPZ, tmp_path_factory.mktemp("pm"), test_fraction=0.15, seed=0)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """A multilabel manifest of 300 patients with 1-4 images each and one rare finding."""
    rows = []
    for p in range(300):
        split = "test" if p >= 260 else "val" if p >= 240 else "train"
        for k in range(1 + p % 4):
            rows.append(
                {
                    "image": f"/data/p{p:04d}_{k}.png",
                    "split": split,
                    "patient_id": f"P{p:04d}",
                    "Effusion": int((p + k) % 3 == 0),
                    "Mass": -1 if p % 5 == 0 else int(p % 2 == 0),
                    "Hernia": int(p in (13, 101)),  # 2 patients in train: rare
                }
            )
    out = tmp_path_factory.mktemp("grouped") / "manifest.csv"
    return write_manifest(rows, ["Effusion", "Mass", "Hernia"], "multilabel", out, "synthetic", "CC0")


def _train_images(m: Manifest) -> set[str]:
    return {r["image"] for r in m.rows if r["split"] == "train"}


def _non_train(m: Manifest) -> list[dict[str, str]]:
    return [r for r in m.rows if r["split"] != "train"]


def _check_nested(parent: Manifest, seeds=SEEDS) -> dict[int, list[Manifest]]:
    out = {}
    for seed in seeds:
        subsets = [subsample_manifest(parent, f, seed) for f in FRACTIONS]
        for small, large in zip(subsets, subsets[1:], strict=False):
            assert _train_images(small) <= _train_images(large)
        assert subsets[-1].rows == parent.rows  # 100 % is the parent, in order
        for s in subsets:
            assert _non_train(s) == _non_train(parent)  # val/test copied untouched
        out[seed] = subsets
    return out


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_bad_fraction(grouped: Manifest, fraction: float) -> None:
    with pytest.raises(ConfigError) as info:
        subsample_manifest(grouped, fraction, 0)
    assert info.value.reason == "bad_fraction"


def test_pneumonia_nested_stratified_deterministic(pneumonia: Manifest) -> None:
    by_seed = _check_nested(pneumonia)
    train = [r for r in pneumonia.rows if r["split"] == "train"]
    parent_rate = sum(r["label"] == "1" for r in train) / len(train)
    per_class = Counter(r["label"] for r in train)
    for subsets in by_seed.values():
        for fraction, s in zip(FRACTIONS, subsets, strict=True):
            counts = Counter(r["label"] for r in s.rows if r["split"] == "train")
            assert counts == {c: math.ceil(fraction * n) for c, n in per_class.items()}  # exact per stratum
            rate = counts["1"] / sum(counts.values())
            assert abs(rate - parent_rate) < (0.02 if fraction >= 0.05 else 0.05)
    again = subsample_manifest(pneumonia, 0.1, SEEDS[0])
    assert again.rows == by_seed[SEEDS[0]][2].rows  # same seed -> same rows
    assert _train_images(by_seed[SEEDS[0]][2]) != _train_images(by_seed[SEEDS[1]][2])  # seed matters
    assert subsample_manifest(pneumonia, 0.1, 0, stratify=False).counts()["train"] == math.ceil(
        0.1 * len(train)
    )


def test_grouped_multilabel_subsets(grouped: Manifest) -> None:
    by_seed = _check_nested(grouped)
    images_of = defaultdict(set)
    for r in grouped.rows:
        if r["split"] == "train":
            images_of[r["patient_id"]].add(r["image"])
    for subsets in by_seed.values():
        for s in subsets:
            chosen = defaultdict(set)
            for r in s.rows:
                if r["split"] == "train":
                    chosen[r["patient_id"]].add(r["image"])
            assert all(images == images_of[p] for p, images in chosen.items())  # whole patients only
            assert any(r["Hernia"] == "1" for r in s.rows if r["split"] == "train")  # rare finding kept
        tiny = subsets[0]
        assert len({r["patient_id"] for r in tiny.rows if r["split"] == "train"}) <= 6
        info = tiny.meta["subsample"]
        assert info["stratify"] == "rarest_positive_label" and info["group"] == "patient_id"
        assert info["parent_train_groups"] == 240 and info["fraction"] == 0.01


def test_written_subset_is_leak_free_and_loadable(grouped: Manifest, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "m_10.csv"
    written = write_subsample(grouped.path, out, 0.1, seed=3)
    loaded = load_manifest(out)
    assert loaded.rows == written.rows and loaded.counts() == written.counts()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["subsample"]["parent"] == str(grouped.path.absolute())
    assert meta["subsample"]["seed"] == 3 and meta["counts"] == loaded.counts()
    assert meta["source"] == "synthetic" and meta["license"] == "CC0"
    codes = {i.code for i in validate_manifest(out, check_files=False)}
    assert not codes & {"patient_leak", "image_in_two_splits", "bad_label"}


def test_cli_subsample(grouped: Manifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["manifest", "subsample", str(grouped.path), "--fraction", "0.25", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    assert "train groups" in capsys.readouterr().out
    assert main([*args, "--group", "none", "--stratify", "none", "--out", str(tmp_path / "b.csv")]) == 0
    b = json.loads((tmp_path / "b.json").read_text())["subsample"]
    assert b["group"] is None and b["stratify"] is None
    a_rows = load_manifest(tmp_path / "a.csv").rows
    assert a_rows == subsample_manifest(grouped, 0.25, 5).rows
    assert (
        main(
            ["manifest", "subsample", str(grouped.path), "--fraction", "2", "--out", str(tmp_path / "c.csv")]
        )
        == 2
    )
    assert "[bad_fraction]" in capsys.readouterr().err
    assert (
        main(["manifest", "subsample", str(tmp_path / "no.csv"), "--fraction", ".5", "--out", "x.csv"]) == 2
    )


def test_no_train_rows(grouped: Manifest) -> None:
    with pytest.raises(ManifestError) as info:
        subsample_manifest(grouped.filter(lambda r: r["split"] != "train"), 0.5, 0)
    assert info.value.reason == "no_train"
