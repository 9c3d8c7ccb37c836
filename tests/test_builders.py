"""Dataset builders (`mcolor manifest medmnist|folders|chexpert|nih`) on real or realistic inputs."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcolor.cli import main
from mcolor.data.builders import build_chexpert, build_folders, build_medmnist, build_nih, kermany_patient_id
from mcolor.data.builders.medmnist import NIH_FINDINGS
from mcolor.data.manifests import load_manifest, validate_manifest
from mcolor.errors import ConfigError, ManifestError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PNEUMONIA_NPZ = SHARED / "data" / "pneumoniamnist" / "pneumoniamnist_dev.npz"
NIH_DIR = SHARED / "data" / "radiographs"
needs_pneumonia = pytest.mark.skipif(not PNEUMONIA_NPZ.is_file(), reason=f"real data absent: {PNEUMONIA_NPZ}")


def _errors(path: Path, **kwargs) -> list:
    return [i for i in validate_manifest(path, **kwargs) if i.severity == "error"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ MedMNIST


@pytest.fixture(scope="module")
def pneumonia_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PNEUMONIA_NPZ.is_file():
        pytest.skip(f"real data absent: {PNEUMONIA_NPZ}")
    out = tmp_path_factory.mktemp("pneumoniamnist")
    assert (
        main(["manifest", "medmnist", str(PNEUMONIA_NPZ), "--out", str(out), "--test-fraction", "0.15"]) == 0
    )
    return out / "manifest.csv"


@pytest.mark.slow
def test_medmnist_real_pneumoniamnist(pneumonia_manifest: Path) -> None:
    m = load_manifest(pneumonia_manifest)
    assert m.task == "binary" and m.labels == ("normal", "pneumonia")
    counts = m.counts()
    assert counts["val"] == 524 and counts["train"] + counts["test"] == 4690
    by_split = {s: Counter(r["label"] for r in m.rows if r["split"] == s) for s in m.splits()}
    assert by_split["val"] == {"0": 135, "1": 389}  # val is never carved
    assert by_split["test"] == {"0": round(0.15 * 1213), "1": round(0.15 * 3477)}  # stratified carve
    assert all(r["image"].startswith(("train/", "val/")) for r in m.rows)  # names trace the npz arrays
    meta = json.loads(pneumonia_manifest.with_suffix(".json").read_text())
    assert meta["license"] == "CC BY 4.0" and "MedMNIST" in meta["source"]
    assert meta["builder"]["test_carved_from"] == "train"
    assert meta["builder"]["cross_split_pixel_duplicates"] == 8  # real train/val duplicates in the file
    with np.load(PNEUMONIA_NPZ) as data:
        for row in (m.rows[0], m.rows[-1]):
            split, index = row["image"].split("/")[0], int(Path(row["image"]).stem)
            pixels = np.asarray(Image.open(m.image_path(row)))
            assert pixels.dtype == np.uint8 and pixels.shape == (28, 28)
            np.testing.assert_array_equal(pixels, data[f"{split}_images"][index])
            assert int(row["label"]) == int(data[f"{split}_labels"][index, 0])
    assert _errors(pneumonia_manifest) == []
    hashed = _errors(pneumonia_manifest, hash_content=True)
    assert len(hashed) == 8 and {i.code for i in hashed} == {"duplicate_content"}


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 600/100 slice of PneumoniaMNIST (named like the original so labels are known)."""
    if not PNEUMONIA_NPZ.is_file():
        pytest.skip(f"real data absent: {PNEUMONIA_NPZ}")
    path = tmp_path_factory.mktemp("npz") / "pneumoniamnist_small.npz"
    with np.load(PNEUMONIA_NPZ) as d:
        np.savez(path, **{k: d[k][:600] if k.startswith("train") else d[k][:100] for k in d.files})
    return path


@needs_pneumonia
def test_medmnist_test_carve_is_deterministic(small_npz: Path, tmp_path: Path) -> None:
    def test_images(seed: int, name: str) -> list[str]:
        build_medmnist(small_npz, tmp_path / name, test_fraction=0.2, seed=seed)
        return [r["image"] for r in _rows(tmp_path / name / "manifest.csv") if r["split"] == "test"]

    first, again, other = test_images(3, "a"), test_images(3, "b"), test_images(4, "c")
    assert first == again and len(first) == 120
    assert first != other and len(other) == 120
    assert all(img.startswith("train/") for img in first)


def _fake_npz(path: Path, labels: dict[str, np.ndarray]) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, lab in labels.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (len(lab), 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = lab
    np.savez(path, **arrays)
    return path


def test_medmnist_chestmnist_layout_is_multilabel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = {
        s: rng.integers(0, 2, (n, 14), dtype=np.uint8) for s, n in (("train", 30), ("val", 5), ("test", 8))
    }
    npz = _fake_npz(tmp_path / "chestmnist.npz", labels)
    m = build_medmnist(npz, tmp_path / "out")
    assert m.task == "multilabel" and m.labels == NIH_FINDINGS
    assert m.counts() == {"train": 30, "val": 5, "test": 8}
    assert m.records("test")[2]["label"].tolist() == labels["test"][2].astype(float).tolist()
    with pytest.raises(ConfigError):
        build_medmnist(npz, tmp_path / "again", test_fraction=0.1)  # it already has a test split


def test_medmnist_multiclass_and_label_names(tmp_path: Path) -> None:
    npz = _fake_npz(
        tmp_path / "organamnist.npz", {"train": np.arange(12).reshape(-1, 1) % 4, "val": np.array([[3]])}
    )
    m = build_medmnist(npz, tmp_path / "out", labels=["a", "b", "c", "d"])
    assert m.task == "multiclass" and m.labels == ("a", "b", "c", "d")
    assert [r["label"] for r in m.records("train")][:5] == [0, 1, 2, 3, 0]
    assert build_medmnist(npz, tmp_path / "out2").labels == ("class_0", "class_1", "class_2", "class_3")
    with pytest.raises(ConfigError):
        build_medmnist(npz, tmp_path / "out3", labels=["a", "b"])


def test_medmnist_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ManifestError) as info:
        build_medmnist(tmp_path / "absent.npz", tmp_path / "out")
    assert info.value.reason == "missing_file"
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ManifestError) as info:
        build_medmnist(tmp_path / "text.npz", tmp_path / "out")
    assert info.value.reason == "bad_input"
    np.savez(tmp_path / "odd.npz", x=np.zeros(3))
    with pytest.raises(ManifestError, match="train_images") as info:
        build_medmnist(tmp_path / "odd.npz", tmp_path / "out")
    assert info.value.reason == "bad_input"
    assert main(["manifest", "medmnist", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "[missing_file]" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- folders (Kermany)


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person1_bacteria_1.jpeg", "person1"),
        ("person1_virus_6.jpeg", "person1"),
        ("person100_bacteria_475.jpeg", "person100"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-0381-0001.jpeg", "NORMAL2-IM-0381"),
        ("IM-0429-0001-0001.jpeg", "IM-0429"),  # 143 such names in the real split got no id before
        ("NORMAL2-IM-1345-0001-0002.jpeg", "NORMAL2-IM-1345"),
        ("person447_virus_921_1.jpeg", "person447"),
        ("scan.png", None),
        ("person1_bacteria.jpeg", None),
    ],
)
def test_kermany_patient_id(name: str, patient: str | None) -> None:
    assert kermany_patient_id(name) == patient


KERMANY_TREE = {
    "train/NORMAL": ["IM-0115-0001.jpeg", "IM-0117-0001.jpeg", "NORMAL2-IM-0381-0001.jpeg"],
    "train/PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person3_virus_11.jpeg"],
    "val/NORMAL": ["NORMAL2-IM-1427-0001.jpeg"],
    "val/PNEUMONIA": ["person1946_bacteria_4874.jpeg"],
    "test/NORMAL": ["IM-0001-0001.jpeg", "IM-0003-0001.jpeg"],
    "test/PNEUMONIA": ["person100_bacteria_475.jpeg", "person101_bacteria_483.jpeg"],
}


def _kermany_tree(root: Path) -> Path:
    """A Kermany-layout tree of JPEGs (real PneumoniaMNIST pixels when ../shared is present)."""
    if PNEUMONIA_NPZ.is_file():
        with np.load(PNEUMONIA_NPZ) as d:
            pixels = d["val_images"][:20]
    else:
        pixels = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    k = 0
    for folder, names in KERMANY_TREE.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            Image.fromarray(pixels[k]).save(root / folder / name)
            k += 1
    (root / "train" / "NORMAL" / ".DS_Store").write_text("")
    (root / "__MACOSX").mkdir()
    return root


def test_folders_kermany_tree(tmp_path: Path) -> None:
    root = _kermany_tree(tmp_path / "chest_xray")
    assert main(["manifest", "folders", str(root), "--out", str(tmp_path / "out")]) == 0
    m = load_manifest(tmp_path / "out" / "manifest.csv")
    assert m.task == "binary" and m.labels == ("NORMAL", "PNEUMONIA")
    assert m.counts() == {"train": 6, "val": 2, "test": 4}  # every official split kept, nothing carved
    assert m.meta["builder"]["carved"] == {}
    by_name = {Path(r["image"]).name: r for r in m.rows}
    assert by_name["person1_bacteria_2.jpeg"]["patient_id"] == "person1"
    assert by_name["person1_bacteria_2.jpeg"]["label"] == "1" and by_name["IM-0115-0001.jpeg"]["label"] == "0"
    assert by_name["NORMAL2-IM-0381-0001.jpeg"]["patient_id"] == "NORMAL2-IM-0381"
    assert all(Path(r["image"]).is_absolute() for r in m.rows)  # out/ is outside the tree: absolute
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["license"] == "CC BY 4.0" and "Kermany" in meta["source"]
    assert _errors(tmp_path / "out" / "manifest.csv") == []

    inside = build_folders(root, root)  # manifest beside the images: relative paths
    assert inside.rows[0]["image"] == "train/NORMAL/IM-0115-0001.jpeg"
    assert _errors(root / "manifest.csv") == []


KERMANY224 = SHARED / "data" / "kermany224"
needs_kermany = pytest.mark.skipif(not (KERMANY224 / "train").is_dir(), reason=f"real data absent: {KERMANY224}")


def _groups_by_split(m) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in m.rows:
        out.setdefault(r["group_id"], set()).add(r["split"])
    return out


def _kermany_train_tree(root: Path, per_class: int = 40) -> Path:
    """A train-only Kermany tree of distinct real pixels: every name pattern, several images per patient."""
    if PNEUMONIA_NPZ.is_file():
        with np.load(PNEUMONIA_NPZ) as d:
            pixels = d["train_images"][: 3 * per_class * 2]
    else:
        pixels = np.random.default_rng(1).integers(0, 256, (3 * per_class * 2, 28, 28), dtype=np.uint8)
    names = {"NORMAL": [], "PNEUMONIA": []}
    for p in range(per_class // 2):
        names["NORMAL"] += [f"IM-{p:04d}-0001.jpeg", f"NORMAL2-IM-{p:04d}-0001-0002.jpeg"]
        names["PNEUMONIA"] += [f"person{p}_bacteria_{2 * p}.jpeg", f"person{p}_virus_{2 * p + 1}.jpeg",
                               f"person{p + 500}_virus_{p}_1.jpeg"]
    k = 0
    for cls, files in names.items():
        (root / "train" / cls).mkdir(parents=True)
        for name in files:
            Image.fromarray(pixels[k]).save(root / "train" / cls / name, quality=100)
            k += 1
    return root


def test_folders_carves_val_and_test_from_train_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _kermany_train_tree(tmp_path / "k")
    # the same picture filed under a second child's name: it must land with the first child
    Image.open(root / "train/PNEUMONIA/person3_bacteria_6.jpeg").save(root / "train/PNEUMONIA/person77_bacteria_9.jpeg")
    (root / "train/PNEUMONIA/person77_bacteria_9.jpeg").write_bytes(
        (root / "train/PNEUMONIA/person3_bacteria_6.jpeg").read_bytes())
    args = ["manifest", "folders", str(root), "--out", str(tmp_path / "o"), "--val-fraction", "0.2",
            "--test-fraction", "0.25", "--seed", "3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "carved test" in printed and "carved val" in printed and "1 pixel-identical" in printed
    m = load_manifest(tmp_path / "o" / "manifest.csv")
    assert set(m.counts()) == {"train", "val", "test"} and sum(m.counts().values()) == 101
    by_name = {Path(r["image"]).name: r for r in m.rows}
    twin, first = by_name["person77_bacteria_9.jpeg"], by_name["person3_bacteria_6.jpeg"]
    assert twin["patient_id"] == "person77" and twin["group_id"] == first["group_id"] == "person3"
    assert twin["split"] == first["split"]
    assert all(len(s) == 1 for s in _groups_by_split(m).values())  # no patient or twin straddles splits
    assert by_name["person3_virus_7.jpeg"]["subtype"] == "viral" and by_name["IM-0003-0001.jpeg"]["subtype"] == "normal"
    # stratified: each subtype keeps its share of patients in test (10 of 40 normal-name patients, ...)
    test_subtypes = Counter(r["subtype"] for r in m.rows if r["split"] == "test")
    assert set(test_subtypes) == {"normal", "bacterial", "viral"}
    assert _errors(tmp_path / "o" / "manifest.csv", hash_content=True) == []
    # deterministic in the seed, different with another seed
    again = build_folders(root, tmp_path / "o2", val_fraction=0.2, test_fraction=0.25, seed=3)
    assert [r["split"] for r in again.rows] == [r["split"] for r in m.rows]
    other = build_folders(root, tmp_path / "o3", val_fraction=0.2, test_fraction=0.25, seed=4)
    assert [r["split"] for r in other.rows] != [r["split"] for r in m.rows]
    # the three-class task from the file names: same patients in each split as the binary manifest
    sub = build_folders(root, tmp_path / "o4", val_fraction=0.2, test_fraction=0.25, seed=3, task="subtype")
    assert sub.task == "multiclass" and sub.labels == ("NORMAL", "BACTERIAL", "VIRAL")
    sub_by_name = {Path(r["image"]).name: r for r in sub.rows}
    assert sub_by_name["person3_virus_7.jpeg"]["label"] == "2"
    assert sub_by_name["person3_bacteria_6.jpeg"]["label"] == "1"
    assert {n: r["split"] for n, r in sub_by_name.items()} == {n: r["split"] for n, r in by_name.items()}


def test_folders_keeps_official_test_and_carves_val(tmp_path: Path) -> None:
    root = _kermany_train_tree(tmp_path / "k")
    (root / "test" / "NORMAL").mkdir(parents=True)
    (root / "test" / "PNEUMONIA").mkdir(parents=True)
    for name in ("IM-0001-0001.jpeg", "NORMAL2-IM-0900-0001.jpeg"):
        Image.new("L", (8, 8), 40).save(root / "test" / "NORMAL" / name)
    Image.new("L", (8, 8), 90).save(root / "test" / "PNEUMONIA" / "person900_virus_1.jpeg")
    m = build_folders(root, tmp_path / "o", val_fraction=0.1, test_fraction=0.3)  # test exists: not carved
    assert m.counts()["test"] == 3 and m.counts()["val"] > 0
    assert set(m.meta["builder"]["carved"]) == {"val"} and m.meta["builder"]["official_splits"] == ["test", "train"]
    assert {Path(r["image"]).name for r in m.rows if r["split"] == "test"} == {
        "IM-0001-0001.jpeg", "NORMAL2-IM-0900-0001.jpeg", "person900_virus_1.jpeg"}
    none = build_folders(root, tmp_path / "o2", val_fraction=0.0)
    assert set(none.counts()) == {"train", "test"}


def test_folders_task_and_fraction_errors(tmp_path: Path) -> None:
    for cls in ("covid", "normal"):
        (tmp_path / "t" / "train" / cls).mkdir(parents=True)
        Image.new("L", (4, 4)).save(tmp_path / "t" / "train" / cls / "x.png")
    with pytest.raises(ManifestError, match="Kermany") as info:
        build_folders(tmp_path / "t", tmp_path / "o", task="subtype")
    assert info.value.reason == "bad_layout"
    with pytest.raises(ManifestError) as info:
        build_folders(tmp_path / "t", tmp_path / "o", val_fraction=0.6, test_fraction=0.5)
    assert info.value.reason == "bad_fraction"
    with pytest.raises(ManifestError) as info:
        build_folders(tmp_path / "t", tmp_path / "o", task="cats")
    assert info.value.reason == "bad_option"


@needs_kermany
def test_every_real_kermany_name_parses() -> None:
    from mcolor.data.builders.folders import kermany_subtype

    names = {cls: sorted(p.name for p in (KERMANY224 / "train" / cls).iterdir()) for cls in ("NORMAL", "PNEUMONIA")}
    assert len(names["NORMAL"]) == 1341 and len(names["PNEUMONIA"]) == 3875
    unparsed = [n for ns in names.values() for n in ns if kermany_patient_id(n) is None]
    assert unparsed == []
    subtypes = Counter(kermany_subtype(n, cls) for cls, ns in names.items() for n in ns)
    assert subtypes == {"NORMAL": 1341, "BACTERIAL": 2530, "VIRAL": 1345}
    patients = {cls: {kermany_patient_id(n) for n in ns} for cls, ns in names.items()}
    assert not patients["NORMAL"] & patients["PNEUMONIA"]
    assert 1200 < len(patients["NORMAL"]) < 1400 and 1300 < len(patients["PNEUMONIA"]) < 1700


@needs_kermany
@pytest.mark.slow
def test_real_kermany_carve_is_leak_free(tmp_path: Path) -> None:
    m = build_folders(KERMANY224, tmp_path / "k", val_fraction=0.1, test_fraction=0.2, task="pneumonia")
    counts = m.counts()
    assert sum(counts.values()) == 5216 and 0.17 < counts["test"] / 5216 < 0.23 and 0.07 < counts["val"] / 5216 < 0.13
    assert m.meta["builder"]["identical_images"] >= 20  # the split holds about 30 groups of identical images
    assert all(len(s) == 1 for s in _groups_by_split(m).values())
    assert _errors(tmp_path / "k" / "manifest.csv") == []


def test_folders_multiclass_and_bad_layout(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for cls in ("covid", "normal", "viral"):
            (tmp_path / "t" / split / cls).mkdir(parents=True)
            Image.new("L", (4, 4)).save(tmp_path / "t" / split / cls / "x.png")
    m = build_folders(tmp_path / "t", tmp_path / "o", license="CC0")
    assert m.task == "multiclass" and m.labels == ("covid", "normal", "viral")
    assert m.license == "CC0"
    (tmp_path / "flat" / "NORMAL").mkdir(parents=True)
    with pytest.raises(ManifestError, match="no train/val/test") as info:
        build_folders(tmp_path / "flat", tmp_path / "o2")
    assert info.value.reason == "bad_layout"
    with pytest.raises(ManifestError) as info:
        build_folders(tmp_path / "absent", tmp_path / "o3")
    assert info.value.reason == "missing_file"


# -------------------------------------------------------------------------------------------- CheXpert

CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
    "Fracture,Support Devices"
)
CHEXPERT_TRAIN = [
    "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0",
    "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,"
    "-1.0,,-1.0,,1.0,",
    "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Female,83,Frontal,AP,,,,1.0,,,-1.0,,,,,,1.0,",
    "CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Female,83,Lateral,,,,,1.0,,,-1.0,,,,,,1.0,",
    "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,",
    "CheXpert-v1.0-small/train/patient00004/study1/view1_frontal.jpg,Female,20,Frontal,PA,1.0,0.0,,,,,,,,,0.0,,,",
    "CheXpert-v1.0-small/train/patient00004/study1/view2_lateral.jpg,Female,20,Lateral,,1.0,0.0,,,,,,,,,0.0,,,",
    "CheXpert-v1.0-small/train/patient00005/study1/view1_frontal.jpg,Male,33,Frontal,PA,1.0,,0.0,,,,,,,,,,1.0,",
]
CHEXPERT_VALID = [
    "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,"
    "0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
    "CheXpert-v1.0-small/valid/patient64542/study1/view2_lateral.jpg,Male,70,Lateral,,0.0,0.0,0.0,1.0,0.0,0.0,"
    "0.0,0.0,0.0,0.0,1.0,0.0,0.0,1.0",
]


def _chexpert(tmp_path: Path, extra_train: int = 0) -> tuple[Path, Path, Path]:
    root = tmp_path / "data"
    lines = list(CHEXPERT_TRAIN)
    for p in range(extra_train):  # more patients so a val carve has something to take
        lab = "1.0" if p % 3 == 0 else "0.0"
        findings = ["", "", lab, "", "", "", "", "", "", "", lab, "", "", ""]  # Cardiomegaly, Effusion
        path = f"CheXpert-v1.0-small/train/patient{p + 10:05d}/study1/view1_frontal.jpg"
        lines.append(",".join([path, "Male", "50", "Frontal", "PA", *findings]))
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_text("\n".join([CHEXPERT_HEADER, *lines]) + "\n")
    valid.write_text("\n".join([CHEXPERT_HEADER, *CHEXPERT_VALID]) + "\n")
    for line in lines + CHEXPERT_VALID:
        image = root / line.split(",")[0]
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8)).save(image)
    return train, valid, root


COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


@pytest.mark.parametrize(("policy", "uncertain"), [("u-ones", "1"), ("u-zeros", "0"), ("ignore", "-1")])
def test_chexpert_uncertainty_policies(tmp_path: Path, policy: str, uncertain: str) -> None:
    train, valid, root = _chexpert(tmp_path)
    args = ["manifest", "chexpert", str(train), str(valid), "--root", str(root), "--out", str(tmp_path / "o")]
    assert main([*args, "--uncertain", policy, "--val-fraction", "0"]) == 0
    rows = _rows(tmp_path / "o" / "manifest.csv")
    assert list(rows[0])[:5] == ["image", "split", "patient_id", "study_id", "view"]
    assert [c for c in rows[0] if c in COMPETITION] == COMPETITION
    second = rows[1]  # patient00002/study2: Cardiomegaly, Edema, Consolidation, Atelectasis, Effusion all -1
    assert second["patient_id"] == "patient00002" and second["study_id"] == "patient00002/study2"
    assert [second[c] for c in COMPETITION] == [uncertain] * 5
    assert rows[0]["Cardiomegaly"] == "" and rows[0]["Atelectasis"] == ""  # blank stays unknown
    assert rows[4]["Edema"] == "1" and rows[4]["Consolidation"] == ""
    assert Counter(r["split"] for r in rows) == {"train": 8, "test": 2}  # valid.csv -> test
    m = load_manifest(tmp_path / "o" / "manifest.csv")
    assert m.task == "multilabel" and m.labels == tuple(COMPETITION)
    label = m.records("train")[1]["label"]
    assert np.isnan(label).all() if policy == "ignore" else label.tolist() == [float(uncertain)] * 5
    meta = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert meta["builder"]["uncertain"] == policy and "Research Use Agreement" in meta["license"]
    assert _errors(tmp_path / "o" / "manifest.csv") == []


def test_chexpert_frontal_only_and_val_carve(tmp_path: Path) -> None:
    train, valid, root = _chexpert(tmp_path, extra_train=40)
    m = build_chexpert([train, valid], root, tmp_path / "o", frontal_only=True, val_fraction=0.2, seed=1)
    assert all(r["view"] in ("AP", "PA") for r in m.rows)
    assert m.counts()["test"] == 1
    val_patients = {r["patient_id"] for r in m.rows if r["split"] == "val"}
    train_patients = {r["patient_id"] for r in m.rows if r["split"] == "train"}
    assert not val_patients & train_patients and 8 <= len(val_patients) <= 10
    assert _errors(tmp_path / "o" / "manifest.csv") == []
    again = build_chexpert([train, valid], root, tmp_path / "o2", frontal_only=True, val_fraction=0.2, seed=1)
    assert {r["patient_id"] for r in again.rows if r["split"] == "val"} == val_patients
    # root given as the CheXpert-v1.0-small folder itself
    inner = build_chexpert([valid], root / "CheXpert-v1.0-small", tmp_path / "o3", valid_as="val")
    assert inner.counts() == {"val": 2} and _errors(tmp_path / "o3" / "manifest.csv") == []


def test_chexpert_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "train.csv"
    bad.write_text(
        "Path,Sex,Age\nCheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68\n"
    )
    with pytest.raises(ManifestError, match="Frontal/Lateral") as info:
        build_chexpert([bad], tmp_path, tmp_path / "o")
    assert info.value.reason == "bad_header"
    train, _, root = _chexpert(tmp_path)
    train.write_text(
        train.read_text().replace(",68,Frontal,AP,1.0,,,,,,,,,0.0", ",68,Frontal,AP,1.0,,,,,,,,maybe,0.0")
    )
    with pytest.raises(ManifestError, match=r"train\.csv:2: .*Atelectasis") as info:
        build_chexpert([train], root, tmp_path / "o")
    assert info.value.reason == "bad_label"
    with pytest.raises(ManifestError) as info:
        build_chexpert([tmp_path / "absent_train.csv"], root, tmp_path / "o")
    assert info.value.reason == "missing_file"


# ------------------------------------------------------------------------------------------------- NIH

NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)


def _nih_inputs(tmp_path: Path, entries: list[str], train_val: list[str], test: list[str]) -> list[str]:
    (tmp_path / "Data_Entry_2017.csv").write_text("\n".join([NIH_HEADER, *entries]) + "\n")
    (tmp_path / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (tmp_path / "test_list.txt").write_text("\n".join(test) + "\n")
    return [
        str(tmp_path / "Data_Entry_2017.csv"),
        "--train-val-list",
        str(tmp_path / "train_val_list.txt"),
        "--test-list",
        str(tmp_path / "test_list.txt"),
    ]


@pytest.mark.skipif(not (NIH_DIR / "00000001_000.png").is_file(), reason=f"real data absent: {NIH_DIR}")
def test_nih_real_images(tmp_path: Path) -> None:
    entries = [
        "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,",
        "00027426_000.png,No Finding,0,27426,41,F,PA,2048,2500,0.168,0.168,",
        "00000003_000.png,Hernia,0,3,81,F,PA,2582,2991,0.143,0.143,",  # in no list: skipped
    ]
    args = _nih_inputs(tmp_path, entries, ["00000001_000.png"], ["00027426_000.png"])
    out = tmp_path / "out"
    assert (
        main(["manifest", "nih", *args, "--root", str(NIH_DIR), "--out", str(out), "--val-fraction", "0"])
        == 0
    )
    m = load_manifest(out / "manifest.csv")
    assert m.task == "multilabel" and m.labels == NIH_FINDINGS and m.num_outputs == 14
    assert m.counts() == {"train": 1, "test": 1}
    train, test = m.records("train")[0], m.records("test")[0]
    assert train["image"] == str(NIH_DIR / "00000001_000.png") and train["patient_id"] == "00000001"
    assert train["label"].tolist() == [float(f == "Cardiomegaly") for f in NIH_FINDINGS]
    assert test["label"].tolist() == [0.0] * 14 and test["patient_id"] == "00027426"
    assert m.rows[0]["view"] == "PA"
    assert json.loads((out / "manifest.json").read_text())["builder"]["unlisted_rows_skipped"] == 1
    assert _errors(out / "manifest.csv") == []


def test_nih_nested_folders_and_val_carve(tmp_path: Path) -> None:
    entries, train_val, test = [], [], []
    findings = ["No Finding", "Effusion", "Infiltration|Mass", "Hernia", "Atelectasis|Effusion"]
    for patient in range(1, 41):
        for follow in range(2):
            name = f"{patient:08d}_{follow:03d}.png"
            entries.append(
                f"{name},{findings[(patient + follow) % 5]},{follow},{patient},50,M,AP,1,1,0.1,0.1,"
            )
            (test if patient > 30 else train_val).append(name)
            sub = tmp_path / "images" / f"images_{1 + patient % 2:03d}" / "images"
            sub.mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4)).save(sub / name)
    m = build_nih(
        *(_nih_inputs(tmp_path, entries, train_val, test)[i] for i in (0, 2, 4)),
        root=tmp_path / "images",
        out_dir=tmp_path / "out",
        val_fraction=0.2,
        seed=0,
    )
    counts = m.counts()
    assert counts["test"] == 20 and counts["train"] + counts["val"] == 60 and counts["val"] in (10, 12, 14)
    assert m.records("train")[0]["image"].startswith(str(tmp_path / "images" / "images_"))
    assert _errors(tmp_path / "out" / "manifest.csv") == []  # files found, no patient in two splits


def test_nih_bad_inputs(tmp_path: Path) -> None:
    args = _nih_inputs(
        tmp_path, ["00000001_000.png,Cardiomegaly|Flu,0,1,58,M,PA,1,1,0.1,0.1,"], ["00000001_000.png"], []
    )
    with pytest.raises(ManifestError, match="Data_Entry_2017.csv:2") as info:
        build_nih(args[0], args[2], args[4], tmp_path, tmp_path / "o")
    assert info.value.reason == "bad_label"
    args = _nih_inputs(
        tmp_path,
        ["00000001_000.png,Mass,0,1,58,M,PA,1,1,0.1,0.1,"],
        ["00000001_000.png"],
        ["00000001_000.png"],
    )
    with pytest.raises(ManifestError) as info:
        build_nih(args[0], args[2], args[4], tmp_path, tmp_path / "o")
    assert info.value.reason == "bad_split_list"
    (tmp_path / "Data_Entry_2017.csv").write_text("image,label\nx.png,Mass\n")
    assert main(["manifest", "nih", *args, "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
