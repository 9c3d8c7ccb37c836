"""MetaImage, NRRD and NIfTI: real radiographs converted with SimpleITK / nibabel read back pixel for pixel
as the PNG / DICOM they came from (non-square crops, so a transpose cannot pass), every failure is a typed
reason, and reading a PNG or DICOM never imports SimpleITK or nibabel."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcolor.errors import RadiographReadError
from mcolor.io import META_KEYS, read_radiograph

sitk = pytest.importorskip("SimpleITK")
nib = pytest.importorskip("nibabel")

REPO = Path(__file__).resolve().parents[1]
EXACT = 1e-6  # integer samples: the same float32 min-max, bit for bit up to this
FLOAT_TOL = 2e-6  # float32 samples: min-max of an affine image, float rounding only
SITK_EXTS = (".mha", ".mhd", ".nrrd", ".nhdr", ".nii", ".nii.gz")


def _minmax(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return (a - a.min()) / (a.max() - a.min())


def write_sitk(v: np.ndarray, path: Path, spacing: tuple[float, float] = (0.2, 0.3), compress: bool = False) -> Path:
    """SimpleITK's convention: ``GetImageFromArray`` takes (rows, cols); spacing is (x = col, y = row).

    A trailing axis of 2-4 is pixel components (vector/RGB/RGBA); other 3-D arrays are (slices, rows, cols).
    """
    image = sitk.GetImageFromArray(v, isVector=v.ndim == 3 and v.shape[-1] <= 4)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def write_nib(v: np.ndarray, path: Path, spacing: tuple[float, float] = (0.2, 0.3)) -> Path:
    """nibabel / NIfTI's convention: voxel axes (i, j) = (x = column, y = row), i.e. the array ``v.T``."""
    klass = nib.Nifti1Pair if path.suffix == ".hdr" else nib.Nifti1Image
    image = klass(np.asfortranarray(v.T), np.diag([spacing[0], spacing[1], 1.0, 1.0]))
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))
    return path


@pytest.fixture
def crop(chest_u8: np.ndarray) -> np.ndarray:
    """Real NIH chest pixels, 480 x 360 (non-square: a transposed read has the wrong shape)."""
    return np.ascontiguousarray(chest_u8[20:500, 60:420])


def _variants(v: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "uint8": v,
        "uint16": v.astype(np.uint16) * 257 + 3,
        "float32": (v.astype(np.float32) * np.float32(0.37) - np.float32(5.0)),
    }


@pytest.mark.parametrize("ext", SITK_EXTS)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_simpleitk_files_read_as_the_png(ext, dtype, crop, chest_png, tmp_path):
    """NIH PNG -> crop -> SimpleITK WriteImage in every format and pixel type -> the PNG crop's pixels."""
    v = _variants(crop)[dtype]
    Image.fromarray(crop).save(tmp_path / "crop.png")
    ref, _ = read_radiograph(tmp_path / "crop.png")
    image, meta = read_radiograph(write_sitk(v, tmp_path / f"img{ext}"))
    assert image.dtype == np.float32 and image.shape == crop.shape == (480, 360)
    assert np.abs(image - ref).max() <= (FLOAT_TOL if dtype == "float32" else EXACT)
    fmt = {".mha": "metaimage", ".mhd": "metaimage", ".nrrd": "nrrd", ".nhdr": "nrrd"}.get(ext, "nifti")
    assert meta["source_format"] == fmt and list(meta) == list(META_KEYS)
    assert meta["original_shape"] == [480, 360] and meta["applied"] == ["minmax"]
    np.testing.assert_allclose(meta["pixel_spacing"], [0.3, 0.2], rtol=1e-6)  # [row, col]
    assert meta["photometric_interpretation"] == "MONOCHROME2"
    assert meta["bits_allocated"] == v.dtype.itemsize * 8
    json.dumps(meta)


@pytest.mark.parametrize("ext", [".mha", ".nrrd"])
def test_compressed_simpleitk_files(ext, crop, tmp_path):
    image, _ = read_radiograph(write_sitk(crop.astype(np.uint16) * 16, tmp_path / f"z{ext}", compress=True))
    np.testing.assert_allclose(image, _minmax(crop), atol=EXACT)


@pytest.mark.parametrize("name", ["n.nii", "n.nii.gz", "pair.hdr"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_nibabel_files_read_as_the_png(name, dtype, crop, tmp_path):
    v = _variants(crop)[dtype]
    image, meta = read_radiograph(write_nib(v, tmp_path / name))
    assert image.shape == (480, 360) and meta["source_format"] == "nifti"
    assert np.abs(image - _minmax(crop)).max() <= (FLOAT_TOL if dtype == "float32" else EXACT)
    np.testing.assert_allclose(meta["pixel_spacing"], [0.3, 0.2], rtol=1e-6)
    assert meta["pixel_spacing_source"] == "pixdim"


def test_nibabel_array_saved_as_rows_reads_transposed(crop, tmp_path):
    """The documented rule: NIfTI's first voxel axis is the column axis, whatever the writer meant."""
    nib.save(nib.Nifti1Image(crop, np.eye(4)), str(tmp_path / "rows_first.nii"))
    image, _ = read_radiograph(tmp_path / "rows_first.nii")
    assert image.shape == (360, 480)
    np.testing.assert_allclose(image, _minmax(crop.T), atol=EXACT)


def test_simpleitk_and_nibabel_agree_on_the_same_nifti(crop, tmp_path):
    """A NIfTI written by SimpleITK (LPS affine) and by nibabel (RAS affine) hold the same voxel order."""
    a = write_sitk(crop, tmp_path / "itk.nii")
    b = write_nib(crop, tmp_path / "nib.nii")
    assert np.array_equal(np.asarray(nib.load(str(a)).dataobj), np.asarray(nib.load(str(b)).dataobj))
    assert np.array_equal(read_radiograph(a)[0], read_radiograph(b)[0])


def _dicom_stored(path: Path) -> np.ndarray:
    import pydicom

    return pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("ext", [".mha", ".nrrd", ".nii.gz"])
def test_real_dicom_pixels_read_as_the_dicom(ext, dicom_dir, testdata_file, write_dicom, tmp_path):
    """SIIM CR (8-bit JPEG) and pydicom's RG1 CR (15-bit of 16) -> non-square crop of the stored values ->
    a DICOM and a volume file of the same stored values read identically."""
    sources = {
        "siim": _dicom_stored(dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm")[100:900, 200:800],
        "rg1": _dicom_stored(testdata_file("RG1_UNCI.dcm"))[200:1400:2, 300:1500:3],
    }
    for label, stored in sources.items():
        stored = np.ascontiguousarray(stored)
        ref, _ = read_radiograph(write_dicom(f"{label}.dcm", stored, BitsStored=15 if label == "rg1" else 8))
        path = write_sitk(stored, tmp_path / f"{label}{ext}")
        image, _ = read_radiograph(path)
        assert image.shape == stored.shape and stored.shape[0] != stored.shape[1], label
        np.testing.assert_allclose(image, ref, atol=EXACT, err_msg=label)


def test_single_slice_volumes_are_accepted(crop, tmp_path):
    """(1, H, W) through SimpleITK (a 3-D image with z = 1) and (W, H, 1) / (1, W, H) through nibabel."""
    write_sitk(crop[None], tmp_path / "z1.mha", spacing=(0.2, 0.3, 5.0))
    nib.save(nib.Nifti1Image(crop.T[:, :, None], np.eye(4)), str(tmp_path / "k1.nii"))
    nib.save(nib.Nifti1Image(crop.T[None], np.eye(4)), str(tmp_path / "i1.nii"))
    for name in ("z1.mha", "k1.nii", "i1.nii"):
        image, _ = read_radiograph(tmp_path / name)
        np.testing.assert_allclose(image, _minmax(crop), atol=EXACT, err_msg=name)


def test_rgb_and_vector_pixels_follow_the_raster_rules(crop, tmp_path):
    gray3 = np.stack([crop] * 3, axis=-1)
    image, meta = read_radiograph(write_sitk(gray3, tmp_path / "gray3.nrrd"))
    np.testing.assert_allclose(image, _minmax(crop), atol=EXACT)
    assert meta["applied"] == ["rgb_equal_channels", "minmax"] and meta["photometric_interpretation"] == "RGB"
    colour = np.stack([crop, crop[::-1], crop[:, ::-1]], axis=-1)
    image, meta = read_radiograph(write_sitk(colour, tmp_path / "colour.mha"))
    luma = np.asarray(Image.fromarray(colour).convert("L"))
    np.testing.assert_allclose(image, _minmax(luma), atol=EXACT)  # Pillow's own L, bit for bit
    assert "rgb_to_luminance" in meta["applied"]
    rgba = np.concatenate([gray3, np.full(crop.shape + (1,), 255, np.uint8)], axis=-1)
    image, meta = read_radiograph(write_sitk(rgba, tmp_path / "rgba.mha"))
    assert meta["applied"][:2] == ["drop_alpha", "rgb_equal_channels"]
    rgb24 = np.zeros(crop.T.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb24["R"] = rgb24["G"] = rgb24["B"] = crop.T
    nib.save(nib.Nifti1Image(rgb24, np.eye(4)), str(tmp_path / "rgb24.nii"))
    image, meta = read_radiograph(tmp_path / "rgb24.nii")
    np.testing.assert_allclose(image, _minmax(crop), atol=EXACT)
    vector = np.stack([crop, crop[::-1]], axis=-1)  # a 2-component vector image: no gray image in it
    with pytest.raises(RadiographReadError) as info:
        read_radiograph(write_sitk(vector, tmp_path / "vector.mha"))
    assert info.value.reason == "unsupported_photometric"


def test_nifti_scaling_is_a_modality_lut(crop, tmp_path):
    image = nib.Nifti1Image(crop.T.astype(np.int16), np.eye(4))
    image.header.set_slope_inter(-2.0, 100.0)  # a negative slope inverts
    nib.save(image, str(tmp_path / "scaled.nii"))
    out, meta = read_radiograph(tmp_path / "scaled.nii")
    np.testing.assert_allclose(out, 1.0 - _minmax(crop), atol=EXACT)
    assert meta["applied"] == ["modality_lut", "minmax"]


def test_format_is_sniffed_by_content_not_extension(crop, tmp_path):
    for ext, fmt in ((".mha", "metaimage"), (".nrrd", "nrrd"), (".nii", "nifti"), (".nii.gz", "nifti")):
        real = write_sitk(crop, tmp_path / f"real{ext}")
        fake = tmp_path / f"looks_like_dicom{ext.replace('.', '_')}.dcm"
        fake.write_bytes(real.read_bytes())
        assert read_radiograph(fake)[1]["source_format"] == fmt, ext


# --- broken files --------------------------------------------------------------------------------


def _expect(path: Path, reason: str, **kwargs: object) -> RadiographReadError:
    with pytest.raises(RadiographReadError) as info:
        read_radiograph(path, **kwargs)
    assert info.value.reason == reason, f"{info.value.reason} != {reason}: {info.value}"
    assert info.value.path == str(path)
    return info.value


@pytest.fixture
def small(chest_u8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chest_u8[::8, ::6])  # 64 x 86 real pixels


def _cut(path: Path, keep: float) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda v, d: _cut(write_sitk(v, d / "a.mha"), 0.6),
        lambda v, d: (_cut(write_sitk(v, d / "b.mhd").with_suffix(".raw"), 0.5), d / "b.mhd")[1],
        lambda v, d: _cut(write_sitk(v, d / "c.mha", compress=True), 0.7),
        lambda v, d: _cut(write_sitk(v, d / "d.nrrd"), 0.6),
        lambda v, d: (_cut(write_sitk(v, d / "e.nhdr").with_suffix(".raw"), 0.5), d / "e.nhdr")[1],
        lambda v, d: _cut(write_sitk(v, d / "f.nrrd", compress=True), 0.7),
        lambda v, d: _cut(write_nib(v, d / "g.nii"), 0.6),
        lambda v, d: _cut(write_nib(v, d / "h.nii.gz"), 0.8),
        lambda v, d: (_cut(write_nib(v, d / "i.hdr").with_suffix(".img"), 0.5), d / "i.hdr")[1],
    ],
    ids=["mha", "mhd_raw", "mha_zlib", "nrrd", "nhdr_raw", "nrrd_gzip", "nii", "nii_gz", "hdr_img"],
)
def test_truncated_data(make: Callable[[np.ndarray, Path], Path], small, tmp_path):
    _expect(make(small, tmp_path), "truncated_pixel_data")


def test_missing_data_files(small, tmp_path):
    write_sitk(small, tmp_path / "a.mhd").with_suffix(".raw").unlink()
    _expect(tmp_path / "a.mhd", "no_pixel_data")
    write_sitk(small, tmp_path / "b.nhdr").with_suffix(".raw").unlink()
    _expect(tmp_path / "b.nhdr", "no_pixel_data")
    write_nib(small, tmp_path / "c.hdr").with_suffix(".img").unlink()
    _expect(tmp_path / "c.hdr", "no_pixel_data")
    (tmp_path / "sub").mkdir()
    write_sitk(small, tmp_path / "outside.mhd")  # outside.raw is real, but beside the header it is not
    text = (tmp_path / "outside.mhd").read_bytes().replace(b"outside.raw", b"../outside.raw")
    (tmp_path / "sub" / "up.mhd").write_bytes(text)
    assert "outside the header's folder" in str(_expect(tmp_path / "sub" / "up.mhd", "no_pixel_data"))
    header_only = write_sitk(small, tmp_path / "d.mha").read_bytes().split(b"ElementDataFile = LOCAL\n")[0]
    (tmp_path / "d.mha").write_bytes(header_only + b"ElementDataFile = LOCAL\n")
    _expect(tmp_path / "d.mha", "no_pixel_data")


def test_bad_headers(small, tmp_path):
    (tmp_path / "a.mha").write_bytes(b"ObjectType = Image\nNDims = banana\nElementDataFile = LOCAL\n" + bytes(64))
    _expect(tmp_path / "a.mha", "decode_failed")
    (tmp_path / "b.mha").write_bytes(b"NDims = 2\nthis line is not a key value pair\n" + bytes(64))
    _expect(tmp_path / "b.mha", "decode_failed")
    text = write_sitk(small, tmp_path / "c.nrrd").read_bytes().replace(b"type: unsigned char", b"type: banana")
    (tmp_path / "c.nrrd").write_bytes(text)
    _expect(tmp_path / "c.nrrd", "decode_failed")
    text = write_sitk(small, tmp_path / "twice.mha").read_bytes()
    (tmp_path / "twice.mha").write_bytes(text.replace(b"NDims = 2\n", b"NDims = 2\nDimSize = 60000 60000\n"))
    assert "twice" in str(_expect(tmp_path / "twice.mha", "decode_failed"))  # which DimSize wins? neither
    raw = bytearray(write_nib(small, tmp_path / "d.nii").read_bytes())
    raw[70:72] = struct.pack("<h", 9999)  # datatype: no such NIfTI code
    (tmp_path / "d.nii").write_bytes(bytes(raw))
    _expect(tmp_path / "d.nii", "decode_failed")
    (tmp_path / "e.nii.gz").write_bytes(gzip.compress(b"not a NIfTI header at all" * 40))
    _expect(tmp_path / "e.nii.gz", "not_an_image")


def test_multi_slice_volumes_are_multi_frame(small, tmp_path):
    stack = np.stack([small, small[::-1]])
    for ext in (".mha", ".nrrd", ".nii.gz"):
        _expect(write_sitk(stack, tmp_path / f"v{ext}", spacing=(1.0, 1.0, 1.0)), "multi_frame")
    nib.save(nib.Nifti1Image(np.stack([small.T] * 3, axis=-1)[:, :, None, :], np.eye(4)), str(tmp_path / "t.nii"))
    _expect(tmp_path / "t.nii", "multi_frame")  # a 4-D time series of 3 frames


def test_too_large_from_the_header(small, tmp_path):
    for ext in (".mha", ".nrrd", ".nii"):
        path = write_sitk(small, tmp_path / f"s{ext}")
        _expect(path, "too_large", max_pixels=1000)
    text = write_sitk(small, tmp_path / "bomb.mha").read_bytes().replace(b"DimSize = 86 64", b"DimSize = 60000 60000")
    (tmp_path / "bomb.mha").write_bytes(text)
    _expect(tmp_path / "bomb.mha", "too_large")
    raw = bytearray(write_nib(small, tmp_path / "bomb.nii").read_bytes())
    raw[40:56] = struct.pack("<8h", 2, 30000, 30000, 1, 1, 1, 1, 1)  # dim[0..7]
    (tmp_path / "bomb.nii").write_bytes(bytes(raw))
    _expect(tmp_path / "bomb.nii", "too_large")


def test_float_nan_is_decode_failed(small, tmp_path):
    v = small.astype(np.float32)
    v[3, 4] = np.nan
    _expect(write_sitk(v, tmp_path / "nan.mha"), "decode_failed")


def test_mutated_volume_files_raise_only_typed_errors(small, tmp_path):
    """A quick seeded sweep (the hypothesis campaign is in test_fuzz_readers.py)."""
    rng = np.random.default_rng(3)
    sources = [write_sitk(small, tmp_path / "s.mha"), write_sitk(small, tmp_path / "s.nrrd"),
               write_nib(small, tmp_path / "s.nii"), write_nib(small, tmp_path / "s.nii.gz")]
    for source in sources:
        raw = source.read_bytes()
        for i in range(15):
            data = bytearray(raw)
            if i % 3 == 0:
                data = data[: int(rng.integers(1, len(data)))]
            else:
                for pos in rng.integers(0, min(len(data), 600), size=int(rng.integers(1, 8))):
                    data[pos] = int(rng.integers(0, 256))
            path = tmp_path / f"m{i}{''.join(source.suffixes)}"
            path.write_bytes(bytes(data))
            try:
                image, _ = read_radiograph(path)
            except RadiographReadError:
                continue
            assert image.dtype == np.float32 and np.isfinite(image).all() and image.ndim == 2


def test_png_and_dicom_reads_never_import_simpleitk_or_nibabel(tmp_path, write_dicom):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "a.png")
    dcm = write_dicom("a.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8))
    code = (
        "import sys\n"
        "from mcolor.io import read_radiograph\n"
        f"read_radiograph({str(tmp_path / 'a.png')!r}); read_radiograph({str(dcm)!r})\n"
        "print(sorted(m for m in ('SimpleITK', 'nibabel') if m in sys.modules))\n"
        f"read_radiograph({str(write_sitk(np.eye(4, dtype=np.uint8), tmp_path / 'b.mha'))!r})\n"
        "print('SimpleITK' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_infer_scan_recognises_the_new_formats_by_content(small, tmp_path):
    """``mcolor infer`` selects files by content like the reader: volume headers are non-DICOM images (predicted
    only with ``--allow-non-dicom``), their detached data files are not images on their own."""
    from mcolor.inference.rules import SelectionRules
    from mcolor.inference.scan import classify

    write_sitk(small, tmp_path / "a.mhd")
    write_sitk(small, tmp_path / "b.nrrd")
    write_nib(small, tmp_path / "c.nii.gz")
    for allow, status in ((False, "skipped"), (True, "pending")):
        for name, fmt in (("a.mhd", "metaimage"), ("b.nrrd", "nrrd"), ("c.nii.gz", "nifti")):
            record = classify(tmp_path / name, tmp_path, SelectionRules(allow_non_dicom=allow))
            assert record.status == status and record.header["format"] == fmt, (name, record)
    raw = classify(tmp_path / "a.raw", tmp_path, SelectionRules(allow_non_dicom=True))
    assert raw.status == "skipped" and raw.reason == "not_dicom"
