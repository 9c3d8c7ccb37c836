"""Shared fixtures: the real-data folder beside the repo and a DICOM writer for synthetic variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository; tests using it skip when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"real data folder {SHARED_DIR} is absent")
    return SHARED_DIR


@pytest.fixture(scope="session")
def radiographs_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "radiographs"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def dicom_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "dicom"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def chest_png(radiographs_dir: Path) -> Path:
    """NIH ChestX-ray14 00000001_000.png, 512x512 8-bit gray: the lossless reference picture."""
    path = radiographs_dir / "00000001_000.png"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def chest_u8(chest_png: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(chest_png) as im:
        return np.asarray(im.convert("L")).copy()


@pytest.fixture(scope="session")
def testdata_file() -> Callable[[str], Path]:
    """``pydicom.data.get_testdata_file`` that skips when pydicom-data is not installed."""

    def get(name: str) -> Path:
        from pydicom.data import get_testdata_file

        found = get_testdata_file(name)
        if found is None:
            pytest.skip(f"pydicom test file {name} is unavailable (pip install pydicom-data)")
        return Path(str(found))

    return get


def make_dataset(pixels: np.ndarray | None, **elements: Any) -> Any:
    """A minimal valid CR Image Storage dataset (Explicit VR Little Endian) around ``pixels``.

    ``elements`` override or add attributes by DICOM keyword (``BitsStored=12`` also sets HighBit).
    Pixel bytes are written verbatim: the caller chooses the stored values, and with ``None`` the
    dataset has no Pixel Data at all.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop_class = elements.pop("SOPClassUID", CR_IMAGE_STORAGE)
    sop_instance = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_instance
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    if pixels is not None:
        bits = 8 if pixels.dtype.itemsize == 1 else 16
        ds.Rows, ds.Columns = pixels.shape[:2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = bits
        ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    if "BitsStored" in elements:
        ds.HighBit = ds.BitsStored - 1
    return ds


@pytest.fixture
def write_dicom(tmp_path: Path) -> Callable[..., Path]:
    """``write_dicom(name, pixels, **elements) -> Path``: save :func:`make_dataset` under tmp_path."""

    def write(name: str, pixels: np.ndarray | None, **elements: Any) -> Path:
        ds = make_dataset(pixels, **elements)
        path = tmp_path / name
        ds.save_as(path, enforce_file_format=True)
        return path

    return write


@pytest.fixture(scope="session")
def dicom_dataset() -> Callable[..., Any]:
    """The :func:`make_dataset` factory, for tests that need to edit a dataset before saving it."""
    return make_dataset


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``MCOLOR_CACHE`` with the embedded synthetic phantoms generated once per session."""
    from mcolor.data.synthetic import ensure_synthetic_dataset

    path = tmp_path_factory.mktemp("mcolor_cache")
    ensure_synthetic_dataset(path / "synthetic")
    return path


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_cache: Path) -> Path:
    """One tiny trained bundle per session (ResNet-18 + COLORU, 32 px, 1 epoch on the synthetic phantoms,
    ``models/model.ts`` exported). Read-only: tests that modify a bundle work on ``copy_bundle`` of it."""
    from bundle_runner import TINY, new_bundle, run_bundle

    bundle = new_bundle(tmp_path_factory.mktemp("trained") / "cxr_colorization")
    run_bundle(["train.json"], {**TINY, "export_torchscript": "true"}, synthetic_cache, bundle)
    return bundle
