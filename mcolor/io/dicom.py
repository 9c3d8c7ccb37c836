"""DICOM -> one grayscale float32 image in [0, 1], bone bright, with pydicom and its plugins.

Order of operations (PS3.3 C.11 grayscale pipeline, then our normalisation): stored values (pydicom
masks BitsStored and sign-extends PixelRepresentation=1) -> Modality LUT / Rescale -> VOI LUT or
window (``voi="auto"``) -> MONOCHROME1 inversion -> min-max to [0, 1].

Every header check (SOP class, frames, photometric, size, transfer syntax, truncation) runs before a
single pixel is decoded: the dataset is read with the pixel bytes deferred.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mcolor.io.common import new_meta, read_error, to_unit_range

# Elements larger than this are not read by dcmread; pixel bytes load only after the header checks.
_DEFER_SIZE = "256 KB"
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) little / big endian
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
# Hints for transfer syntaxes the installed pydicom has no decoder class for at all.
_TS_HINTS = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless: needs a pydicom release with JPEG XL support",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression: needs a pydicom release with JPEG XL support",
    "1.2.840.10008.1.2.4.112": "JPEG XL: needs a pydicom release with JPEG XL support",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression: needs a newer pydicom",
}


def read_dicom(path: Path, *, voi: str, max_pixels: int, force: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one single-frame grayscale DICOM image; see the module docstring for the pipeline.

    ``force`` is set by the dispatcher only for files without the 128-byte preamble whose first bytes
    look like a DICOM tag, so random bytes never reach pydicom's permissive parser.
    """
    ds, assumed_syntax = _read_dataset(path, force)
    meta = _header_meta(ds)
    if assumed_syntax:
        meta["applied"].append("assume_transfer_syntax")
    _check_header(ds, path, max_pixels, meta["applied"])
    stored = _decode(ds, path)
    return _to_image(stored, ds, voi, meta), meta


def _read_dataset(path: Path, force: bool) -> tuple[Dataset, bool]:
    """Parse the header (pixel bytes deferred); returns the dataset and whether the syntax was guessed."""
    try:
        ds = pydicom.dcmread(str(path), force=force, defer_size=_DEFER_SIZE)
    except InvalidDicomError as exc:
        raise read_error("not_an_image", path, f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # pydicom raises OSError/ValueError/KeyError... on broken headers
        raise read_error(
            "decode_failed", path, f"DICOM header could not be parsed ({type(exc).__name__}: {exc})"
        ) from exc
    if force and not any(k in ds for k in ("SOPClassUID", "Rows", "PixelData")):
        raise read_error("not_an_image", path, "no DICOM preamble and no image elements: not DICOM")
    if "TransferSyntaxUID" not in ds.file_meta:
        # Preamble-less files often lack file meta; pydicom needs the syntax to decode pixels.
        implicit, little = ds.original_encoding
        ts = (
            ImplicitVRLittleEndian
            if implicit
            else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        )
        ds.file_meta.TransferSyntaxUID = ts
        return ds, True
    return ds, False


def dicom_get(ds: Dataset, keyword: str) -> Any:
    """``ds.get(keyword)`` that never raises: ``None`` when absent or when pydicom cannot parse the value.

    pydicom converts a value when it is *read*, not when the file is parsed, so a malformed DS/IS/UI
    string raises from ``ds.get`` long after ``dcmread`` succeeded. Every header reader (this image reader,
    the inference scan and its selection rules) goes through here so that one bad element degrades to
    "absent" instead of failing the file. An empty value is returned as pydicom gives it (``""``).
    """
    try:
        return ds.get(keyword)
    except Exception:
        return None


def _plain(value: Any) -> Any:
    """pydicom value -> JSON-serialisable Python (str/int/float/None)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if isinstance(value, int) else float(value)
    return str(value).strip() or None


def _spacing(ds: Dataset) -> tuple[list[float] | None, str | None]:
    """[row, col] spacing in mm: PixelSpacing (patient plane) first, else ImagerPixelSpacing (detector)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dicom_get(ds, keyword)
        try:
            spacing = [float(v) for v in value] if value is not None else None
        except (TypeError, ValueError):
            spacing = None
        if spacing and len(spacing) == 2 and all(math.isfinite(v) and v > 0 for v in spacing):
            return spacing, keyword
    return None, None


def _header_meta(ds: Dataset) -> dict[str, Any]:
    """Whitelisted, PHI-free header fields (no names, IDs, dates: only acquisition descriptors and UIDs)."""
    meta = new_meta("dicom")
    ts = UID(str(ds.file_meta.TransferSyntaxUID))
    meta.update(
        photometric_interpretation=_plain(dicom_get(ds, "PhotometricInterpretation")),
        bits_stored=_plain(dicom_get(ds, "BitsStored")),
        bits_allocated=_plain(dicom_get(ds, "BitsAllocated")),
        pixel_representation=_plain(dicom_get(ds, "PixelRepresentation")),
        modality=_plain(dicom_get(ds, "Modality")),
        body_part=_plain(dicom_get(ds, "BodyPartExamined")),
        view_position=_plain(dicom_get(ds, "ViewPosition")),
        laterality=_plain(dicom_get(ds, "ImageLaterality") or dicom_get(ds, "Laterality")),
        sop_class_uid=_plain(_sop_class(ds)),
        sop_instance_uid=_plain(dicom_get(ds, "SOPInstanceUID")),
        study_instance_uid=_plain(dicom_get(ds, "StudyInstanceUID")),
        series_instance_uid=_plain(dicom_get(ds, "SeriesInstanceUID")),
        transfer_syntax=str(ts),
        transfer_syntax_name=ts.name,
    )
    meta["pixel_spacing"], meta["pixel_spacing_source"] = _spacing(ds)
    rows, cols = _plain(dicom_get(ds, "Rows")), _plain(dicom_get(ds, "Columns"))
    meta["original_shape"] = [rows, cols] if rows is not None and cols is not None else None
    return meta


def _sop_class(ds: Dataset) -> Any:
    return dicom_get(ds, "SOPClassUID") or dicom_get(ds.file_meta, "MediaStorageSOPClassUID")


def _is_non_image_sop(uid: str) -> bool:
    """A SOP class pydicom knows whose name has no 'Image' (SR, presentation states, PDF, RT plans...).

    Unknown (private) SOP classes are given the benefit of the doubt.
    """
    uid = UID(uid)
    return uid.is_valid and uid.type == "SOP Class" and "Image" not in uid.name


def _check_header(ds: Dataset, path: Path, max_pixels: int, applied: list[str]) -> None:
    sop = _sop_class(ds)
    if sop and _is_non_image_sop(str(sop)):
        raise read_error("non_image_sop", path, f"SOP class {UID(str(sop)).name!r} ({sop}) is not an image")
    if "PixelData" not in ds:
        if any(k in ds for k in ("FloatPixelData", "DoubleFloatPixelData")):
            raise read_error("no_pixel_data", path, "only float pixel data (parametric map), no Pixel Data")
        if _file_has_pixel_tag(path):
            raise read_error("truncated_pixel_data", path, "Pixel Data starts but the file ends early")
        raise read_error("no_pixel_data", path, "DICOM without a Pixel Data element")
    frames = _plain(dicom_get(ds, "NumberOfFrames")) or 1
    if isinstance(frames, int | float) and frames > 1:
        raise read_error("multi_frame", path, f"{frames} frames; expected one projection radiograph")
    spp = _plain(dicom_get(ds, "SamplesPerPixel")) or 1
    photometric = _plain(dicom_get(ds, "PhotometricInterpretation"))
    if photometric is None and spp == 1:
        ds.PhotometricInterpretation = "MONOCHROME2"  # in memory only: old ACR-NEMA style files
        applied.append("assume_monochrome2")
    elif spp != 1 or photometric not in _GRAYSCALE:
        raise read_error(
            "unsupported_photometric",
            path,
            f"PhotometricInterpretation {photometric!r} with SamplesPerPixel {spp}; only MONOCHROME1/2",
        )
    rows, cols = _plain(dicom_get(ds, "Rows")), _plain(dicom_get(ds, "Columns"))
    if not isinstance(rows, int) or not isinstance(cols, int) or rows < 1 or cols < 1:
        raise read_error("no_pixel_data", path, f"invalid Rows/Columns ({rows}, {cols})")
    if rows * cols > max_pixels:
        raise read_error("too_large", path, f"{rows}x{cols} pixels exceeds max_pixels={max_pixels}")
    _check_transfer_syntax(ds, path)
    _check_pixel_length(ds, path, rows * cols)


def _check_transfer_syntax(ds: Dataset, path: Path) -> None:
    ts = UID(str(ds.file_meta.TransferSyntaxUID))
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        hint = _TS_HINTS.get(str(ts), "no pydicom decoder exists for it (python-gdcm may read it)")
        raise read_error(
            "unsupported_transfer_syntax", path, f"transfer syntax {ts.name} ({ts}): {hint}"
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin installed"
        raise read_error(
            "unsupported_transfer_syntax", path, f"transfer syntax {ts.name} ({ts}) needs one of: {missing}"
        )


def _check_pixel_length(ds: Dataset, path: Path, n_pixels: int) -> None:
    """Catch truncation before decoding: declared length past end of file, or too few native bytes."""
    elem = ds.get_item("PixelData", keep_deferred=True)  # never read a deferred value of declared size
    length = getattr(elem, "length", None)
    tell = getattr(elem, "value_tell", None)
    if length is None or length == 0xFFFFFFFF:
        return
    if tell is not None and tell + length > path.stat().st_size:
        raise read_error("truncated_pixel_data", path, "Pixel Data runs past the end of the file")
    if not UID(str(ds.file_meta.TransferSyntaxUID)).is_encapsulated:
        bits = _plain(dicom_get(ds, "BitsAllocated")) or 16
        if length < math.ceil(n_pixels * bits / 8):
            raise read_error(
                "truncated_pixel_data", path, f"{length} bytes of Pixel Data for {n_pixels} pixels"
            )


def _file_has_pixel_tag(path: Path) -> bool:
    """pydicom drops an unterminated encapsulated Pixel Data element; its tag in the file betrays it."""
    data = path.read_bytes()
    return any(tag in data for tag in _PIXEL_DATA_TAGS)


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """Stored values as pydicom decodes them (unused high bits masked or sign-extended).

    For native (uncompressed) pixel data pydicom would copy the pixel bytes into a writeable array
    and then shift out the unused high bits in two more passes; here it returns a read-only view of
    the bytes it read (``view_only``) and the correction, when BitsStored < BitsAllocated, is one pass
    that writes the array we keep (:func:`_mask_unused_bits`). Same values, two passes fewer over a
    multi-megabyte image. Encapsulated data is decoded into a new array anyway and goes unchanged.
    """
    native = not UID(str(ds.file_meta.TransferSyntaxUID)).is_encapsulated
    try:
        if native:
            ds.pixel_array_options(view_only=True, correct_unused_bits=False)
        arr = ds.pixel_array
    except Exception as exc:
        text = str(exc)
        reason = "truncated_pixel_data" if "less than expected" in text else "decode_failed"
        raise read_error(
            reason, path, f"pixel data could not be decoded ({type(exc).__name__}: {text})"
        ) from exc
    if arr.ndim != 2:
        raise read_error("decode_failed", path, f"decoded array has shape {arr.shape}, expected (rows, cols)")
    if native:
        arr = _mask_unused_bits(arr, _plain(dicom_get(ds, "BitsAllocated")), _plain(dicom_get(ds, "BitsStored")))
    return arr


def _mask_unused_bits(arr: np.ndarray, bits_allocated: Any, bits_stored: Any) -> np.ndarray:
    """pydicom's ``correct_unused_bits`` (shift left, then right, by BitsAllocated - BitsStored), into a new array.

    Unsigned: the logical shifts clear the unused high bits, i.e. a mask. Signed: the arithmetic right
    shift sign-extends from bit BitsStored - 1. Garbage in the unused bits (overlays) is thus ignored.
    """
    if not isinstance(bits_allocated, int) or not isinstance(bits_stored, int):
        return arr
    shift = bits_allocated - bits_stored
    if shift <= 0 or arr.dtype.kind not in "ui" or shift >= 8 * arr.dtype.itemsize:
        return arr
    if arr.dtype.kind == "u":
        return np.bitwise_and(arr, np.array((1 << bits_stored) - 1, dtype=arr.dtype))
    out = np.left_shift(arr, shift)
    np.right_shift(out, shift, out=out)
    return out


def _to_image(stored: np.ndarray, ds: Dataset, voi: str, meta: dict[str, Any]) -> np.ndarray:
    applied: list[str] = meta["applied"]
    valid = _padding_valid(ds, stored)
    if valid is not None:
        applied.append("pixel_padding")
    x = stored
    if _has_modality_lut(ds):
        x = apply_modality_lut(x, ds)
        applied.append("modality_lut")
    clip_to = None
    if voi == "auto":
        x, clip_to = _apply_voi(x, ds, meta)
    invert = meta["photometric_interpretation"] == "MONOCHROME1"
    # consume: x is the decoded array (or a LUT output) that only this call holds
    return to_unit_range(x, applied, invert=invert, clip_to=clip_to, valid=valid, consume=True)


def _has_modality_lut(ds: Dataset) -> bool:
    if "ModalityLUTSequence" in ds:
        return True
    slope, intercept = dicom_get(ds, "RescaleSlope"), dicom_get(ds, "RescaleIntercept")
    return ((slope not in (None, "") and float(slope) != 1.0)
            or (intercept not in (None, "") and float(intercept) != 0.0))


def _padding_valid(ds: Dataset, stored: np.ndarray) -> np.ndarray | None:
    """Mask of real pixels when Pixel Padding Value (and Range Limit) mark collimator padding."""
    pad = _plain(dicom_get(ds, "PixelPaddingValue"))
    if not isinstance(pad, int):
        return None
    limit = _plain(dicom_get(ds, "PixelPaddingRangeLimit"))
    if isinstance(limit, int):
        lo, hi = min(pad, limit), max(pad, limit)
        valid = (stored < lo) | (stored > hi)
    else:
        valid = stored != pad
    return None if valid.all() else valid


def _apply_voi(x: np.ndarray, ds: Dataset, meta: dict[str, Any]) -> tuple[np.ndarray, tuple | None]:
    """VOI LUT / window. Returns the (possibly transformed) array and a linear window to clip to.

    LINEAR / LINEAR_EXACT windows (by far the most common) are returned as clip bounds: followed by
    min-max they equal pydicom's ``apply_windowing`` (tested) at a fraction of the cost. VOI LUT
    sequences and SIGMOID go through pydicom. An invalid window is skipped and recorded, not fatal.
    """
    applied: list[str] = meta["applied"]
    has_lut = "VOILUTSequence" in ds
    center, width = _first(dicom_get(ds, "WindowCenter")), _first(dicom_get(ds, "WindowWidth"))
    if not has_lut and (center is None or width is None):
        return x, None
    func = (_plain(dicom_get(ds, "VOILUTFunction")) or "LINEAR").upper()
    if not has_lut and func in ("LINEAR", "LINEAR_EXACT"):
        c, w = (center - 0.5, width - 1.0) if func == "LINEAR" else (center, width)
        if w < 0 or (func == "LINEAR_EXACT" and w == 0):
            applied.append("voi_invalid_skipped")
            return x, None
        meta["window"] = [center, width]
        applied.append("voi_lut")
        if w == 0:  # LINEAR with width 1 is a threshold at c
            return (x > c).astype(np.uint8), None
        return x, (c - w / 2, c + w / 2)
    try:
        out = apply_voi_lut(x, ds, index=0, prefer_lut=True)
    except Exception:
        applied.append("voi_invalid_skipped")
        return x, None
    if not has_lut:
        meta["window"] = [center, width]
    applied.append("voi_lut")
    return out, None


def _first(value: Any) -> float | None:
    """First value of a possibly multi-valued DS (pydicom also uses window index 0)."""
    if value is None:
        return None
    try:
        v = float(value[0]) if isinstance(value, MultiValue | list | tuple) else float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) else None
