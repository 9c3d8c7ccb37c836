"""Inputs shared by the inference benchmarks: trained-format bundles and folders of real chest DICOMs.

Nothing here is committed data: bundles and DICOMs are written into a temporary folder at benchmark time.

* :func:`make_bundle` writes what training writes (``models/model.pt`` + ``configs/metadata.json`` through
  :func:`mcolor.artifact.write_trained_model`, ``models/model.ts`` through
  :func:`mcolor.artifact.write_torchscript`) and optionally ``models/model.onnx``, for an untrained network of
  any architecture (seeded random weights: speed does not depend on them).
* :func:`make_dicom_folder` writes ``n`` real radiographs as DICOM files, largest sources first: pydicom-data's
  chest CR (RG1, 1955 x 1841; uncompressed and JPEG 2000, one image in two encodings), the two SIIM CR files
  (1024 x 1024; one image, the second a MONOCHROME1 twin), the NIH, TBX11K and COVID radiographs (512 to
  2373 px), then DISTINCT Kermany chest X-rays (224 x 224, NORMAL and PNEUMONIA alternating), each image
  converted to CR DICOM (MONOCHROME2, 8-bit), in turn uncompressed, JPEG baseline (Pillow's encoder, quality
  95, encapsulated) and JPEG 2000 lossless (pydicom + pylibjpeg-openjpeg; uncompressed when no encoder).
"""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


def make_bundle(dest: Path, color_module: str = "coloru", backbone: str = "efficientnet_lite0",
                image_size: int = 128, letterbox: str = "pad", onnx: bool = False) -> Path:
    """A trained-format bundle at ``dest`` holding an untrained (seeded) network of this architecture."""
    import torch

    from mcolor.artifact import ModelSpec, OperatingPoint, build_network, write_torchscript, write_trained_model
    from mcolor.bundle.installed import init_bundle

    init_bundle(dest, source=REPO / "bundles" / "cxr_colorization")
    spec = ModelSpec(color_module=color_module, backbone=backbone, image_size=image_size, letterbox=letterbox,
                     labels=["normal", "pneumonia"], output_names=["pneumonia"])
    torch.manual_seed(0)
    network = build_network(spec).eval()
    write_trained_model(dest, network.state_dict(), spec, OperatingPoint(1),
                        {"note": "untrained weights written by bench/infer_inputs.py (speed only)"})
    write_torchscript(dest)
    if onnx:
        from mcolor.bundle.export import export_onnx

        export_onnx(network, dest / "models" / "model.onnx", torch.rand(1, 1, image_size, image_size))
    return dest


def _dataset(pixels: np.ndarray, sop_class: str = CR_IMAGE_STORAGE, **elements: object):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, uid
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.PatientID, ds.PatientName = "BENCH", "Bench^Anonymous"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _jpeg_baseline(ds, pixels: np.ndarray) -> None:
    """Encapsulate a Pillow-encoded 8-bit gray baseline JPEG (lossy, quality 95) as the Pixel Data."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"


def _jpeg2000_lossless(ds) -> bool:
    from pydicom.uid import JPEG2000Lossless

    try:
        ds.compress(JPEG2000Lossless)
    except Exception:  # no encoder installed: stay uncompressed
        return False
    return True


def _gray(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")).copy()


def chest_sources(kermany_limit: int) -> list[tuple[str, Path]]:
    """(kind, path) of the distinct real radiographs available, largest first; kind says how to write them."""
    from pydicom.data import get_testdata_file

    found: list[tuple[str, Path]] = []
    for name in ("RG1_UNCI.dcm", "RG1_J2KI.dcm"):
        path = get_testdata_file(name)
        if path:
            found.append(("dicom", Path(str(path))))
    for name in ("siim_cr_chest_monochrome2_jpeg.dcm", "siim_cr_chest_fake_monochrome1_jpeg.dcm"):
        path = SHARED / "dicom" / name
        if path.is_file():
            found.append(("dicom", path))
    rad = SHARED / "radiographs"
    if rad.is_dir():
        found += [("image", p) for p in sorted(rad.rglob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    kermany = SHARED / "kermany224" / "train"
    if kermany.is_dir():
        per_class = [sorted((kermany / c).glob("*.jpeg")) for c in ("NORMAL", "PNEUMONIA")]
        picked = [p for pair in zip(*per_class, strict=False) for p in pair][:kermany_limit]
        found += [("image", p) for p in picked]
    return found


def make_dicom_folder(root: Path, n: int, per_study: int = 8) -> Counter[str]:
    """``n`` distinct real radiographs as DICOM under ``root/studyNNN/``; returns counts per source kind."""
    import pydicom

    sources = chest_sources(kermany_limit=n)[:n]
    if len(sources) < n:
        raise SystemExit(f"only {len(sources)} distinct radiographs found (need ../shared/data and pydicom-data)")
    counts: Counter[str] = Counter()
    for i, (kind, src) in enumerate(sources):
        dst = root / f"study{i // per_study:03d}" / f"img{i:04d}.dcm"
        dst.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dicom":
            shutil.copyfile(src, dst)
            ds = pydicom.dcmread(dst, stop_before_pixels=True)
            counts[f"{src.name} ({ds.Columns}x{ds.Rows} {ds.file_meta.TransferSyntaxUID.name})"] += 1
            continue
        pixels = _gray(src)
        origin = "kermany224" if "kermany224" in src.parts else src.parent.name
        ds = _dataset(pixels)
        encoding = "uncompressed"
        if i % 3 == 1:
            _jpeg_baseline(ds, pixels)
            encoding = "JPEG baseline q95"
        elif i % 3 == 2 and _jpeg2000_lossless(ds):
            encoding = "JPEG 2000 lossless"
        ds.save_as(dst, enforce_file_format=True)
        h, w = pixels.shape
        size = f"{w}x{h}" if origin != "kermany224" else "224x224"
        counts[f"{origin} {size} 8-bit -> CR, {encoding}"] += 1
    return counts


if __name__ == "__main__":  # a quick look at what a folder would hold
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for k, v in sorted(make_dicom_folder(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else 60).items()):
            print(f"{v:4d}  {k}")
