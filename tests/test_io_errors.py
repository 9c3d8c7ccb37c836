"""Every RadiographReadError reason is produced from a real-ish input, and nothing raw escapes."""

from __future__ import annotations

import ast
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcolor.errors import ConfigError, RadiographReadError
from mcolor.io import READ_ERROR_REASONS, read_radiograph

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about broken files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _expect(path: Path | str, reason: str, *, contains: str = "", **kwargs) -> RadiographReadError:
    with pytest.raises(RadiographReadError) as info:
        read_radiograph(path, **kwargs)
    err = info.value
    assert err.reason == reason, f"{err.reason} != {reason}: {err}"
    assert str(path) in str(err) and err.path == str(path)
    assert contains in str(err)
    return err


@pytest.fixture
def small(chest_u8: np.ndarray) -> np.ndarray:
    return chest_u8[::8, ::8].copy()  # 64 x 64 real chest pixels


# --- one case (or more) per reason -------------------------------------------------------------


def test_not_a_file(tmp_path):
    _expect(tmp_path / "missing.dcm", "not_a_file")
    (tmp_path / "x.dcm").mkdir()
    _expect(tmp_path / "x.dcm", "not_a_file", contains="directory")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.dcm")  # reading it would block forever
        _expect(tmp_path / "pipe.dcm", "not_a_file", contains="regular")


def test_not_a_path_object():
    with pytest.raises(RadiographReadError) as info:
        read_radiograph(12345)  # type: ignore[arg-type]
    assert info.value.reason == "not_a_file"


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.dcm"
    path.write_bytes(b"\x00" * 200)
    import mcolor.io.radiograph as radiograph

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(radiograph, "open", denied, raising=False)  # chmod is moot when tests run as root
    _expect(path, "unreadable_file", contains="PermissionError")


def test_empty_file(tmp_path):
    (tmp_path / "empty.dcm").touch()
    _expect(tmp_path / "empty.dcm", "empty_file")


def test_not_an_image(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "random.dcm").write_bytes(rng.bytes(4096))
    _expect(tmp_path / "random.dcm", "not_an_image")
    (tmp_path / "notes.png").write_text("this is text, not a PNG\n" * 20)
    _expect(tmp_path / "notes.png", "not_an_image")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.bmp")  # a real image, unsupported format
    _expect(tmp_path / "a.bmp", "not_an_image")
    # a 'DICM' marker and nothing after it: a DICOM file, but an empty one
    (tmp_path / "dicm_only.dcm").write_bytes(b"\x00" * 128 + b"DICM")
    _expect(tmp_path / "dicm_only.dcm", "no_pixel_data")


def test_no_pixel_data(write_dicom):
    _expect(write_dicom("hdr.dcm", None, Rows=512, Columns=512), "no_pixel_data")


def test_truncated_pixel_data_native(testdata_file, tmp_path):
    raw = testdata_file("RG1_UNCI.dcm").read_bytes()
    (tmp_path / "half.dcm").write_bytes(raw[: len(raw) // 2])
    _expect(tmp_path / "half.dcm", "truncated_pixel_data")


def test_truncated_pixel_data_encapsulated_jpeg(dicom_dir, tmp_path):
    raw = (dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[: int(len(raw) * 0.6)])
    _expect(tmp_path / "cut.dcm", "truncated_pixel_data")


def test_truncated_png(chest_png, tmp_path):
    raw = chest_png.read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    _expect(tmp_path / "cut.png", "truncated_pixel_data")


def test_short_native_pixel_data(write_dicom, small):
    path = write_dicom("short.dcm", small, Rows=128)  # header claims twice the rows present
    _expect(path, "truncated_pixel_data")


def test_unsupported_photometric_rgb(write_dicom, small):
    rgb = np.stack([small] * 3, axis=-1)
    path = write_dicom(
        "rgb.dcm", rgb, SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0
    )
    _expect(path, "unsupported_photometric", contains="RGB")


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "SC_ybr_full_uncompressed.dcm", "OT-PAL-8-face.dcm"])
def test_unsupported_photometric_real_colour_files(name, testdata_file):
    _expect(testdata_file(name), "unsupported_photometric")


def test_multi_frame(write_dicom, small):
    path = write_dicom("mf.dcm", np.concatenate([small, small]), Rows=64, NumberOfFrames=2)
    _expect(path, "multi_frame")


def test_multi_page_tiff(tmp_path, small):
    Image.fromarray(small).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(small)])
    _expect(tmp_path / "pages.tif", "multi_frame")


def _with_transfer_syntax(path: Path, old: bytes, new: bytes) -> Path:
    raw = path.read_bytes()
    assert len(old) == len(new) and raw.count(old) == 1
    path.write_bytes(raw.replace(old, new))
    return path


def test_unsupported_transfer_syntax_jpeg_xl(write_dicom, small):
    from pydicom.encaps import encapsulate

    # pydicom refuses to write a syntax it does not know: write MPEG2 (same UID length), then patch.
    path = write_dicom(
        "jxl.dcm",
        None,
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        BitsAllocated=8,
        BitsStored=8,
        PixelRepresentation=0,
        PhotometricInterpretation="MONOCHROME2",
        PixelData=encapsulate([b"\xff\x0a" + bytes(100)]),
    )
    import pydicom

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    _with_transfer_syntax(path, b"1.2.840.10008.1.2.4.100\x00", b"1.2.840.10008.1.2.4.110\x00")
    _expect(path, "unsupported_transfer_syntax", contains="JPEG XL")


def test_unsupported_transfer_syntax_made_up_uid(dicom_dir, tmp_path):
    path = tmp_path / "private.dcm"
    path.write_bytes((dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm").read_bytes())
    _with_transfer_syntax(path, b"1.2.840.10008.1.2.4.50", b"1.2.826.0.1.3680043.99")
    _expect(path, "unsupported_transfer_syntax", contains="1.2.826.0.1.3680043.99")


def test_unsupported_transfer_syntax_names_the_missing_plugin(dicom_dataset, small, tmp_path, monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import RLELossless

    ds = dicom_dataset(small)
    ds.compress(RLELossless)  # pydicom's own RLE encoder
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    assert read_radiograph(tmp_path / "rle.dcm")[0].shape == (64, 64)  # decodes with the plugins present
    decoder = get_decoder(RLELossless)
    monkeypatch.setattr(decoder, "_available", {})  # as on a machine without any RLE plugin
    err = _expect(tmp_path / "rle.dcm", "unsupported_transfer_syntax", contains="pylibjpeg-rle")
    assert "RLE Lossless" in str(err)


def test_too_large_dicom_header_checked_before_decoding(write_dicom):
    # Rows = Columns = 65535 but only 16 bytes of pixel data: must fail on size, not on decoding.
    path = write_dicom("huge.dcm", np.zeros((4, 4), np.uint8), Rows=65535, Columns=65535)
    _expect(path, "too_large", contains="65535x65535")


@pytest.mark.parametrize("side", [200_000, 10_000])  # above Pillow's hard limit / in its warning band
def test_too_large_png_header_bomb(side, tmp_path):
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # header only: no memory is allocated
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    (tmp_path / "bomb.png").write_bytes(data + _png_chunk(b"IEND", b""))
    _expect(tmp_path / "bomb.png", "too_large")
    if side == 10_000:  # a caller allowing more than Pillow's default limit gets past the guard
        with pytest.raises(RadiographReadError) as info:
            read_radiograph(tmp_path / "bomb.png", max_pixels=2 * side * side)
        assert info.value.reason in ("truncated_pixel_data", "decode_failed")


def test_too_large_with_a_small_cap(chest_png, dicom_dir):
    _expect(chest_png, "too_large", max_pixels=100_000)
    _expect(dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm", "too_large", max_pixels=1000 * 1000)


@pytest.mark.parametrize(
    "sop_class",
    ["1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.104.1"],
)
def test_non_image_sop(sop_class, write_dicom):
    # Basic Text SR, Grayscale Softcopy Presentation State, Encapsulated PDF
    _expect(write_dicom("doc.dcm", None, SOPClassUID=sop_class, Modality="SR"), "non_image_sop")


def test_decode_failed_corrupt_jpeg_fragment(write_dicom, dicom_dataset, tmp_path):
    from pydicom.encaps import encapsulate

    ds = dicom_dataset(
        None,
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        BitsAllocated=8,
        BitsStored=8,
        PixelRepresentation=0,
        PhotometricInterpretation="MONOCHROME2",
    )
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    err = _expect(tmp_path / "bad.dcm", "decode_failed")
    assert "Error" in str(err) or "Exception" in str(err)  # the original exception class is named


def test_decode_failed_png_bad_crc(chest_png, tmp_path):
    raw = bytearray(chest_png.read_bytes())
    idat = raw.find(b"IDAT")
    raw[idat + 20 : idat + 40] = bytes(20)  # corrupt compressed data inside the first IDAT
    (tmp_path / "crc.png").write_bytes(bytes(raw))
    with pytest.raises(RadiographReadError) as info:
        read_radiograph(tmp_path / "crc.png")
    assert info.value.reason in ("decode_failed", "truncated_pixel_data")


def _reasons_asserted_by_cases() -> dict[str, list[str]]:
    """Reason -> the tests of this module that call ``_expect(path, "<reason>")``, read from the source.

    ``_expect`` asserts that the reader raised exactly that reason, so a reason listed here is produced by
    a passing test; read statically, the check does not depend on which tests ran before it.
    """
    found: dict[str, list[str]] = {}
    for fn in ast.parse(Path(__file__).read_text(encoding="utf-8")).body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")):
            continue
        for node in ast.walk(fn):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_expect"
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                found.setdefault(node.args[1].value, []).append(fn.name)
    return found


def test_every_documented_reason_has_a_test():
    cases = _reasons_asserted_by_cases()
    missing = sorted(set(READ_ERROR_REASONS) - set(cases))
    assert not missing, f"READ_ERROR_REASONS without a test case calling _expect(path, reason): {missing}"
    assert set(cases) <= set(READ_ERROR_REASONS), sorted(set(cases) - set(READ_ERROR_REASONS))


# --- contract-wide properties ---------------------------------------------------------------------


def test_bad_options_are_config_errors(chest_png):
    with pytest.raises(ConfigError):
        read_radiograph(chest_png, voi="window")
    with pytest.raises(ConfigError):
        read_radiograph(chest_png, max_pixels=0)


def _mutants(raw: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        data = bytearray(raw)
        if i % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 16))):
                data[pos] = int(rng.integers(0, 256))
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("kind", ["dicom_native", "dicom_jpeg", "png", "jpeg"])
def test_fuzzed_files_raise_only_typed_errors(kind, small, write_dicom, dicom_dir, tmp_path):
    if kind == "dicom_native":
        raw = write_dicom(
            "n.dcm", (small.astype(np.uint16) * 16), BitsStored=12, WindowCenter="2000", WindowWidth="1000"
        ).read_bytes()
    elif kind == "dicom_jpeg":
        raw = (dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm").read_bytes()
    else:
        Image.fromarray(small).save(tmp_path / f"s.{kind}")
        raw = (tmp_path / f"s.{kind}").read_bytes()
    rng = np.random.default_rng(7)
    for i, data in enumerate(_mutants(raw, rng, 25)):
        path = tmp_path / f"m{i}.bin"
        path.write_bytes(data)
        try:
            image, _ = read_radiograph(path)
        except RadiographReadError as err:
            assert err.reason in READ_ERROR_REASONS
        else:
            assert image.dtype == np.float32 and np.isfinite(image).all()
            assert image.min() >= 0.0 and image.max() <= 1.0


def test_failed_reads_leave_the_file_untouched(testdata_file, tmp_path):
    raw = testdata_file("RG1_UNCI.dcm").read_bytes()[:100_000]
    path = tmp_path / "cut.dcm"
    path.write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    with pytest.raises(RadiographReadError):
        read_radiograph(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_error_is_a_value_error_with_the_path(tmp_path):
    (tmp_path / "e.png").touch()
    with pytest.raises(ValueError) as info:  # RadiographReadError subclasses ValueError for callers
        read_radiograph(tmp_path / "e.png")
    assert "e.png" in str(info.value)


def test_reasons_tuple_is_public_and_documented():
    import mcolor.io

    assert isinstance(READ_ERROR_REASONS, tuple) and len(set(READ_ERROR_REASONS)) == len(READ_ERROR_REASONS)
    assert mcolor.io.READ_ERROR_REASONS is READ_ERROR_REASONS
