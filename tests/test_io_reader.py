"""read_radiograph: the same picture reads to the same array whatever the encoding (the acceptance
property), bone is bright, meta is JSON-safe and PHI-free, and the file is never modified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcolor.io import META_KEYS, read_radiograph

LOSSLESS_TOL = 1 / 255 + 1e-6
# JPEG quality 100 of an 8-bit gray image is still lossy: +-1 grey level observed on the NIH image,
# so allow 2 levels (plus the min-max rescale of a possibly shifted extreme).
JPEG_TOL = 2 / 255 + 1e-6


def _minmax(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return (a - a.min()) / (a.max() - a.min())


def _to12(v: np.ndarray) -> np.ndarray:
    return np.round(v.astype(np.float64) * 4095 / 255).astype(np.uint16)


def _variant(kind: str, v: np.ndarray, tmp: Path, write_dicom: Callable[..., Path]) -> Path:
    """Write the 8-bit picture ``v`` in encoding ``kind``; returns the path."""
    if kind == "png8":
        Image.fromarray(v).save(tmp / "a.png")
        return tmp / "a.png"
    if kind == "jpeg_q100":
        Image.fromarray(v).save(tmp / "a.jpg", quality=100, subsampling=0)
        return tmp / "a.jpg"
    if kind == "png16":
        Image.fromarray(v.astype(np.uint16) * 257).save(tmp / "a16.png")
        return tmp / "a16.png"
    if kind == "tiff16":
        Image.fromarray(v.astype(np.uint16) * 257).save(tmp / "a16.tif")
        return tmp / "a16.tif"
    if kind == "png_rgb_stored":  # TBX11K style
        Image.fromarray(np.stack([v, v, v], axis=-1)).save(tmp / "rgb.png")
        return tmp / "rgb.png"
    if kind == "dcm_mono2_8bit":
        return write_dicom("m2_8.dcm", v)
    if kind == "dcm_mono2_12bit":
        return write_dicom("m2_12.dcm", _to12(v), BitsStored=12)
    if kind == "dcm_mono1_12bit":
        return write_dicom(
            "m1_12.dcm", 4095 - _to12(v), BitsStored=12, PhotometricInterpretation="MONOCHROME1"
        )
    if kind == "dcm_mono2_rescale":  # stored = 4 v + 1000, slope/intercept map back to v
        stored = v.astype(np.uint16) * 4 + 1000
        return write_dicom("resc.dcm", stored, BitsStored=14, RescaleSlope="0.25", RescaleIntercept="-250")
    if kind == "dcm_signed_12bit":
        stored = (v.astype(np.int16) * 8 - 1024).astype(np.int16)
        return write_dicom("signed.dcm", stored, BitsStored=12)
    if kind == "dcm_12bit_overlay_high_bits":  # garbage in the unused top 4 bits must be masked
        return write_dicom("hb.dcm", _to12(v) | np.uint16(0xA000), BitsStored=12)
    if kind == "dcm_wide_window":  # a window wider than the data changes nothing after min-max
        return write_dicom("win.dcm", _to12(v), BitsStored=12, WindowCenter="2048", WindowWidth="4096")
    raise AssertionError(kind)


LOSSLESS = [
    "png8",
    "png16",
    "tiff16",
    "png_rgb_stored",
    "dcm_mono2_8bit",
    "dcm_mono2_12bit",
    "dcm_mono1_12bit",
    "dcm_mono2_rescale",
    "dcm_signed_12bit",
    "dcm_12bit_overlay_high_bits",
    "dcm_wide_window",
]


@pytest.mark.parametrize("kind", [*LOSSLESS, "jpeg_q100"])
def test_same_picture_any_encoding_reads_the_same(kind, chest_png, chest_u8, tmp_path, write_dicom):
    ref, _ = read_radiograph(chest_png)
    image, meta = read_radiograph(_variant(kind, chest_u8, tmp_path, write_dicom))
    assert image.dtype == np.float32 and image.shape == chest_u8.shape
    assert image.min() == 0.0 and image.max() == 1.0
    tol = JPEG_TOL if kind == "jpeg_q100" else LOSSLESS_TOL
    assert np.abs(image - ref).max() <= tol, kind
    assert meta["applied"][-1] == "minmax"


def test_reference_png_is_plain_minmax_of_stored_values(chest_png, chest_u8):
    image, meta = read_radiograph(chest_png)
    np.testing.assert_allclose(image, _minmax(chest_u8), atol=1e-6)
    assert meta["source_format"] == "png" and meta["photometric_interpretation"] == "MONOCHROME2"
    assert meta["bits_stored"] == 8 and meta["original_shape"] == [512, 512]


def test_dicom_steps_are_recorded(chest_u8, tmp_path, write_dicom):
    _, m1 = read_radiograph(_variant("dcm_mono1_12bit", chest_u8, tmp_path, write_dicom))
    assert m1["applied"] == ["invert_monochrome1", "minmax"]
    assert m1["photometric_interpretation"] == "MONOCHROME1" and m1["bits_stored"] == 12
    _, mr = read_radiograph(_variant("dcm_mono2_rescale", chest_u8, tmp_path, write_dicom))
    assert mr["applied"] == ["modality_lut", "minmax"]
    _, mw = read_radiograph(_variant("dcm_wide_window", chest_u8, tmp_path, write_dicom))
    assert mw["applied"] == ["voi_lut", "minmax"] and mw["window"] == [2048.0, 4096.0]


def test_siim_fake_monochrome1_is_inverse_of_monochrome2(dicom_dir):
    mono2, m2 = read_radiograph(dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm")
    mono1, m1 = read_radiograph(dicom_dir / "siim_cr_chest_fake_monochrome1_jpeg.dcm")
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)
    assert "invert_monochrome1" in m1["applied"] and "invert_monochrome1" not in m2["applied"]
    assert m2["transfer_syntax"] == "1.2.840.10008.1.2.4.50"
    assert m2["pixel_spacing"] == [0.168, 0.168] and m2["pixel_spacing_source"] == "PixelSpacing"


def _centre_minus_lungs(a: np.ndarray) -> float:
    """Mediastinum/spine strip minus lateral lung fields in a PA chest: > 0 when bone is bright."""
    h, w = a.shape
    centre = a[int(0.3 * h) : int(0.7 * h), int(0.45 * w) : int(0.55 * w)].mean()
    rows = slice(int(0.3 * h), int(0.6 * h))
    lungs = (a[rows, int(0.2 * w) : int(0.3 * w)].mean() + a[rows, int(0.7 * w) : int(0.8 * w)].mean()) / 2
    return float(centre - lungs)


def test_pydicom_rg1_jpeg2000_matches_uncompressed_and_bone_is_bright(testdata_file):
    unc, m_unc = read_radiograph(testdata_file("RG1_UNCI.dcm"))
    j2k, m_j2k = read_radiograph(testdata_file("RG1_J2KI.dcm"))
    assert m_unc["photometric_interpretation"] == m_j2k["photometric_interpretation"] == "MONOCHROME1"
    assert m_j2k["transfer_syntax"] == "1.2.840.10008.1.2.4.91"
    # JPEG 2000 may be lossy: mean error under 1 %, no pixel off by more than 5 %.
    # (This particular file round-trips exactly with pylibjpeg-openjpeg.)
    diff = np.abs(unc - j2k)
    assert diff.mean() < 0.01 and diff.max() < 0.05
    assert _centre_minus_lungs(unc) > 0.15  # MONOCHROME1 inverted: spine brighter than lungs
    assert m_unc["pixel_spacing"] is None  # the file has PixelSpacing 0\0: invalid, not reported


def test_bone_bright_in_every_real_chest(dicom_dir, chest_png):
    for path in (chest_png, dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm"):
        assert _centre_minus_lungs(read_radiograph(path)[0]) > 0.15, path


def test_tbx11k_rgb_png_reads_as_its_first_channel(radiographs_dir):
    path = next(iter(sorted((radiographs_dir / "tbx11k" / "imgs").rglob("*.png"))), None)
    if path is None:
        pytest.skip("no TBX11K png in shared data")
    with Image.open(path) as im:
        assert im.mode == "RGB"
        channel0 = np.asarray(im)[..., 0]
    image, meta = read_radiograph(path)
    # The reader min-max scales; for these files channel 0 spans 0..255, so this is channel0 / 255.
    np.testing.assert_allclose(image, _minmax(channel0), atol=1e-6)
    if channel0.min() == 0 and channel0.max() == 255:
        np.testing.assert_allclose(image, channel0 / 255.0, atol=1e-6)
    assert "rgb_equal_channels" in meta["applied"] and meta["photometric_interpretation"] == "RGB"


def test_rgb_stored_jpeg_decodes_luma_equal_to_each_channel(radiographs_dir):
    for path in sorted(radiographs_dir.glob("*.jpg")):
        with Image.open(path) as im:
            rgb = np.asarray(im)
        assert rgb.ndim == 3 and np.array_equal(rgb[..., 0], rgb[..., 1])
        image, meta = read_radiograph(path)
        assert image.shape == rgb.shape[:2] and meta["source_format"] == "jpeg"
        assert meta["applied"] == ["jpeg_luma", "minmax"] and meta["pil_mode"] == "RGB"
        np.testing.assert_allclose(image, _minmax(rgb[..., 0]), atol=1e-6)  # bit-exact gray


def test_colour_jpeg_luma_is_its_luminance(chest_u8, tmp_path):
    rgb = np.stack([chest_u8, chest_u8[::-1], chest_u8[:, ::-1]], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "colour.jpg", quality=100, subsampling=0)
    image, meta = read_radiograph(tmp_path / "colour.jpg")
    with Image.open(tmp_path / "colour.jpg") as im:
        luma = np.asarray(im.convert("L"))
    assert "jpeg_luma" in meta["applied"]
    # Without chroma subsampling, Y and Pillow's RGB->L of the decoded RGB differ by rounding only.
    assert np.abs(image - _minmax(luma)).max() <= 2 / 255 + 1e-6


def test_16bit_png_keeps_16bit_precision(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(1000, 60000, size=(64, 80), dtype=np.uint16)
    Image.fromarray(stored).save(tmp_path / "x.png")
    image, meta = read_radiograph(tmp_path / "x.png")
    np.testing.assert_allclose(image, _minmax(stored), atol=1e-6)
    assert len(np.unique(image)) > 256 and meta["bits_stored"] == 16 and meta["pil_mode"].startswith("I;16")


def test_true_colour_uses_luminance_and_says_so(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[:4, :, 1] = 200, 50
    Image.fromarray(rgb).save(tmp_path / "c.png")
    image, meta = read_radiograph(tmp_path / "c.png")
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_allclose(image, _minmax(luma), atol=1e-6)
    assert "rgb_to_luminance" in meta["applied"]


def test_alpha_and_palette_are_handled(tmp_path, chest_u8):
    v = chest_u8[:64, :64]
    Image.fromarray(v).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(v).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(v).convert("P").save(tmp_path / "p.png")
    for name, step in (("la.png", "drop_alpha"), ("rgba.png", "drop_alpha"), ("p.png", "palette_to_rgb")):
        image, meta = read_radiograph(tmp_path / name)
        assert image.shape == (64, 64) and step in meta["applied"], name
        np.testing.assert_allclose(image, _minmax(v), atol=LOSSLESS_TOL)


def test_exif_orientation_is_applied(tmp_path):
    v = np.zeros((20, 40), np.uint8)
    v[:, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(v).save(tmp_path / "o.jpg", exif=exif, quality=100)
    image, meta = read_radiograph(tmp_path / "o.jpg")
    assert image.shape == (40, 20) and "exif_transpose" in meta["applied"]
    assert image[:5].mean() > 0.9  # the bright left band is now on top


def test_tiff_whiteiszero_16bit_is_inverted(tmp_path, chest_u8):
    tifffile = pytest.importorskip("tifffile")
    stored = 65535 - chest_u8[:64, :64].astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "w.tif", stored, photometric="miniswhite")
    image, meta = read_radiograph(tmp_path / "w.tif")
    np.testing.assert_allclose(image, _minmax(chest_u8[:64, :64]), atol=LOSSLESS_TOL)
    assert "invert_whiteiszero" in meta["applied"] and meta["photometric_interpretation"] == "MONOCHROME1"


def test_meta_is_json_safe_complete_and_phi_free(chest_u8, write_dicom):
    path = write_dicom(
        "phi.dcm",
        _to12(chest_u8),
        BitsStored=12,
        PatientName="Doe^Jane",
        PatientID="PID-424242",
        PatientBirthDate="19700101",
        InstitutionName="General Hospital",
        ImagerPixelSpacing=["0.15", "0.14"],
    )
    _, meta = read_radiograph(path)
    text = json.dumps(meta)
    assert list(meta) == list(META_KEYS)
    for secret in ("Doe", "PID-424242", "19700101", "General Hospital", str(path)):
        assert secret not in text
    assert meta["pixel_spacing"] == [0.15, 0.14] and meta["pixel_spacing_source"] == "ImagerPixelSpacing"
    assert meta["modality"] == "CR" and meta["body_part"] == "CHEST" and meta["view_position"] == "PA"
    assert meta["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.1" and meta["sop_instance_uid"]
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2.1" and meta["original_shape"] == [512, 512]


def _pydicom_reference(path: Path) -> np.ndarray:
    """What pydicom's own helpers give: modality LUT, apply_voi_lut, invert if MONOCHROME1, min-max."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    x = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds, index=0, prefer_lut=True)
    x = _minmax(x)
    return 1.0 - x if ds.PhotometricInterpretation == "MONOCHROME1" else x


@pytest.mark.parametrize(
    "window",
    [
        {"WindowCenter": "1800", "WindowWidth": "1200"},
        {"WindowCenter": "1800", "WindowWidth": "1200", "VOILUTFunction": "LINEAR_EXACT"},
        {"WindowCenter": "1800", "WindowWidth": "1200", "VOILUTFunction": "SIGMOID"},
        {"WindowCenter": ["2500", "1000"], "WindowWidth": ["800", "100"]},
        {
            "WindowCenter": "1800",
            "WindowWidth": "1200",
            "RescaleSlope": "2",
            "RescaleIntercept": "-100",
            "PhotometricInterpretation": "MONOCHROME1",
        },
    ],
)
def test_voi_window_matches_pydicom_helpers(window, chest_u8, write_dicom):
    path = write_dicom("w.dcm", _to12(chest_u8), BitsStored=12, **window)
    image, meta = read_radiograph(path)
    np.testing.assert_allclose(image, _pydicom_reference(path), atol=1e-5)
    assert "voi_lut" in meta["applied"]
    none, meta_none = read_radiograph(path, voi="none")
    assert "voi_lut" not in meta_none["applied"] and np.abs(none - image).max() > 0.05


def test_voi_lut_sequence_matches_pydicom(chest_u8, write_dicom, dicom_dataset, tmp_path):
    from pydicom.dataset import Dataset

    ds = dicom_dataset(_to12(chest_u8), BitsStored=12)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = (np.sqrt(np.arange(4096) / 4095) * 65535).astype("<u2").tobytes()
    ds.VOILUTSequence = [item]
    ds.save_as(tmp_path / "lut.dcm", enforce_file_format=True)
    image, meta = read_radiograph(tmp_path / "lut.dcm")
    np.testing.assert_allclose(image, _pydicom_reference(tmp_path / "lut.dcm"), atol=1e-5)
    assert meta["applied"] == ["voi_lut", "minmax"] and meta["window"] is None


def test_invalid_window_is_skipped_not_fatal(chest_u8, write_dicom):
    path = write_dicom("bad.dcm", chest_u8, WindowCenter="100", WindowWidth="0")
    image, meta = read_radiograph(path)
    assert "voi_invalid_skipped" in meta["applied"]
    np.testing.assert_allclose(image, _minmax(chest_u8), atol=1e-6)


def test_pixel_padding_is_black_and_excluded_from_scaling(chest_u8, write_dicom):
    stored = _to12(chest_u8)
    stored[:, :50] = 4095  # collimator padding outside the exposed field
    path = write_dicom("pad.dcm", stored, BitsStored=12, PixelPaddingValue=4095)
    image, meta = read_radiograph(path)
    assert "pixel_padding" in meta["applied"] and (image[:, :50] == 0).all()
    np.testing.assert_allclose(image[:, 50:], _minmax(stored[:, 50:]), atol=1e-6)


def test_preambleless_dicom_without_file_meta(chest_u8, dicom_dataset, tmp_path):
    import pydicom

    ds = dicom_dataset(chest_u8)
    del ds.file_meta
    path = tmp_path / "bare"
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[128:132] != b"DICM"
    image, meta = read_radiograph(path)
    np.testing.assert_allclose(image, _minmax(chest_u8), atol=1e-6)
    assert "assume_transfer_syntax" in meta["applied"] and meta["transfer_syntax"] == "1.2.840.10008.1.2"


def test_format_is_sniffed_by_content_not_extension(chest_png, tmp_path):
    fake = tmp_path / "really_a_png.dcm"
    fake.write_bytes(chest_png.read_bytes())
    assert read_radiograph(fake)[1]["source_format"] == "png"


def test_constant_image_gives_zeros_without_nan(write_dicom, tmp_path):
    image, meta = read_radiograph(write_dicom("c.dcm", np.full((16, 16), 7, np.uint16)))
    assert (image == 0).all() and "constant_image" in meta["applied"]
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "c.png")
    assert (read_radiograph(tmp_path / "c.png")[0] == 0).all()


def test_missing_photometric_defaults_to_monochrome2_in_memory_only(chest_u8, dicom_dataset, tmp_path):
    ds = dicom_dataset(chest_u8)
    del ds.PhotometricInterpretation
    path = tmp_path / "nopi.dcm"
    ds.save_as(path, enforce_file_format=True)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    image, meta = read_radiograph(path)
    assert "assume_monochrome2" in meta["applied"]
    np.testing.assert_allclose(image, _minmax(chest_u8), atol=1e-6)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_reading_never_modifies_real_files(dicom_dir, chest_png):
    paths = [chest_png, dicom_dir / "siim_cr_chest_fake_monochrome1_jpeg.dcm"]
    before = [(p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]
    for p in paths:
        read_radiograph(p)
    assert [(p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths] == before
