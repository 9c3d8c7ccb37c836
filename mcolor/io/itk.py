"""MetaImage (``.mha``, ``.mhd`` + data file) and NRRD (``.nrrd``, ``.nhdr`` + data file) with SimpleITK.

SimpleITK decodes (every element type, byte order, zlib/gzip/bzip2 encodings, detached data files). It is
imported inside :func:`read_itk` only: reading a PNG or DICOM never pays for importing it.

Before SimpleITK reads a pixel, the header is checked here: the text header (a bounded read) for the data
file and its size, and SimpleITK's ``ReadImageInformation`` for the geometry (one 2-D plane, the pixel count
against ``max_pixels``). That split exists because SimpleITK's MetaImage errors do not say what went wrong
(MetaIO prints the reason to the console and the exception says "No such file or directory" whatever it
was); a missing data file (``no_pixel_data``) or a short one (``truncated_pixel_data``) is therefore
recognised before decoding, and whatever SimpleITK still raises becomes ``decode_failed`` (or
``truncated_pixel_data`` when NRRD's message says so). Orientation: see :mod:`mcolor.io.planes`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.io.common import new_meta, read_error, to_unit_range
from mcolor.io.planes import check_components, check_finite, extract_plane, plane_axes, sample_meta, to_gray

#: Header text read at most (MetaImage and NRRD headers are a few hundred bytes; comments may add some).
MAX_HEADER_BYTES = 1 << 16
_IMAGE_IO = {"metaimage": "MetaImageIO", "nrrd": "NrrdImageIO"}
_SPACING_KEYS = {"metaimage": ("ElementSpacing", "ElementSize"), "nrrd": ("spacings", "space directions")}
_TRUNCATION = re.compile(r"got only|but received|not read completely|unexpected end|premature|truncat", re.I)


def read_itk(path: Path, fmt: str, *, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a MetaImage (``fmt="metaimage"``) or NRRD (``"nrrd"``) radiograph; see ``read_radiograph``."""
    header = _parse_header(path, fmt)
    location = _data_file(header, fmt, path)
    import SimpleITK as sitk  # lazy: PNG and DICOM reads never import it

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(_IMAGE_IO[fmt])  # by content, whatever the extension says
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise read_error("decode_failed", path, f"{fmt} header could not be read ({_itk_reason(exc)})") from exc
    size, n_components = tuple(int(n) for n in reader.GetSize()), int(reader.GetNumberOfComponents())
    check_components(n_components, path)
    axes = plane_axes(size, path, max_pixels)
    itemsize = sitk.Image([1] * len(size), reader.GetPixelID(), n_components).GetSizeOfPixelComponent()
    if location is not None:
        _check_length(header, fmt, path, location, math.prod(size) * n_components * itemsize)
    meta = new_meta(fmt)
    meta["pixel_spacing"], meta["pixel_spacing_source"] = _spacing(reader.GetSpacing(), axes, header, fmt)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        reason = "truncated_pixel_data" if _TRUNCATION.search(str(exc)) else "decode_failed"
        raise read_error(reason, path, f"{fmt} pixel data could not be read ({_itk_reason(exc)})") from exc
    voxels = sitk.GetArrayViewFromImage(image)  # (..., z, y, x[, c]); a view: ``image`` stays alive below
    if voxels.dtype.kind not in "uifb":
        raise read_error("unsupported_photometric", path, f"{voxels.dtype} (complex) pixels are not a gray image")
    spatial = voxels.ndim - (n_components > 1)
    order = tuple(reversed(range(spatial))) + ((spatial,) if n_components > 1 else ())
    plane = extract_plane(voxels.transpose(order), axes, components=n_components > 1)
    sample_meta(meta, plane.dtype)
    gray = to_gray(plane, n_components, path, meta)
    check_finite(gray, path)
    meta["original_shape"] = [int(gray.shape[0]), int(gray.shape[1])]
    return to_unit_range(gray, meta["applied"]), meta


def _itk_reason(exc: Exception) -> str:
    """The informative tail of a SimpleITK exception (its head is a source-file location)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " / ".join(lines[-2:])[-300:] if lines else type(exc).__name__


def _parse_header(path: Path, fmt: str) -> dict[str, Any]:
    """Key/value fields of the text header, plus ``_end`` (offset of the first data byte, None if not found).

    MetaImage: ``Key = Value`` lines, the last one ``ElementDataFile``. NRRD: the ``NRRD000x`` magic line,
    then ``field: value`` lines (``#`` comments, ``key:=value`` pairs) up to a blank line (attached data)
    or the end of the file (detached header). A header that is not such text is ``decode_failed``.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise read_error("unreadable_file", path, f"cannot read ({type(exc).__name__}: {exc})") from exc
    fields: dict[str, Any] = {"_end": None}
    pos = 0
    lines = raw.split(b"\n")
    for number, line in enumerate(lines):
        pos += len(line) + 1
        if number == len(lines) - 1 and len(raw) == MAX_HEADER_BYTES:
            break  # a line cut by the read limit
        text = line.rstrip(b"\r").decode("latin-1")
        if fmt == "nrrd":
            if number == 0 or text.startswith("#") or ":=" in text:
                continue
            if not text:
                fields["_end"] = pos
                break
            key, sep, value = text.partition(":")
            if not sep:
                raise read_error("decode_failed", path, f"NRRD header line {number + 1} is not 'field: value'")
            fields[key.strip().lower()] = value.strip()
        else:
            if not text.strip():
                continue
            key, sep, value = text.partition("=")
            if not sep:
                raise read_error("decode_failed", path, f"MetaImage header line {number + 1} is not 'Key = Value'")
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                fields["_end"] = min(pos, len(raw))
                break
    if fmt == "metaimage":
        _check_metaimage_fields(fields, path)
    if fmt == "nrrd" and fields["_end"] is None and len(raw) < MAX_HEADER_BYTES:
        fields["_end"] = len(raw)  # header up to the end of the file: a detached header (.nhdr)
    return fields


def _check_metaimage_fields(fields: dict[str, Any], path: Path) -> None:
    """The fields MetaIO cannot do without, checked here so that a garbage header is ``decode_failed``
    before SimpleITK (whose MetaIO prints its complaints to the console) sees it."""
    ndims = _int(fields.get("NDims", ""))
    sizes = fields.get("DimSize", "").split()
    if "ElementDataFile" not in fields:
        raise read_error("decode_failed", path, "MetaImage header without an ElementDataFile line")
    if ndims < 1 or len(sizes) != ndims or not all(n.isdigit() and int(n) > 0 for n in sizes):
        raise read_error("decode_failed", path, "MetaImage header: NDims / DimSize missing or invalid")
    if not fields.get("ElementType", "").startswith("MET_"):
        raise read_error("decode_failed", path, "MetaImage header: ElementType missing or invalid")


def _data_file(header: dict[str, Any], fmt: str, path: Path) -> tuple[Path, int] | None:
    """Where the pixel bytes start: ``(file, offset)``; None for multi-file data (a list or a file-name
    pattern), which is left to SimpleITK. ``no_pixel_data`` when the data file is missing or the header is
    all there is (checked before SimpleITK, which would otherwise fail on the header already)."""
    if fmt == "metaimage":
        name = header["ElementDataFile"]
        local = name.upper() == "LOCAL"
    else:
        name = header.get("data file", header.get("datafile", ""))
        local = not name
    if name.upper().startswith("LIST") or " " in name or "%" in name:
        return None
    if local:
        start = header["_end"]
        if start is None or start >= path.stat().st_size:
            raise read_error("no_pixel_data", path, f"{fmt} header without pixel data after it")
        return path, start
    data = path.parent / name
    folder = path.parent.resolve()
    if not data.resolve().is_relative_to(folder):
        # MetaIO and teem would follow an absolute or ../ path anywhere on the disk and return that file's
        # bytes as pixels: a header received with a dataset must not read outside the dataset.
        raise read_error("no_pixel_data", path, f"{fmt} data file {name!r} is outside the header's folder")
    if not data.is_file():
        raise read_error("no_pixel_data", path, f"{fmt} data file {name!r} is missing")
    return data, 0


def _check_length(header: dict[str, Any], fmt: str, path: Path, location: tuple[Path, int], expected: int) -> None:
    """``truncated_pixel_data`` when the data is shorter than the ``expected`` raw bytes or than the
    compressed size the header declares (MetaImage ``CompressedDataSize``); other encodings and line-based
    skips are left to SimpleITK."""
    if fmt == "metaimage":
        compressed = header.get("CompressedData", "False").lower() == "true"
        binary = header.get("BinaryData", "True").lower() == "true"
        skip = _int(header.get("HeaderSize", "0"))
        need = _int(header.get("CompressedDataSize", "0")) if compressed else (expected if binary else 0)
    else:
        raw = header.get("encoding", "raw").lower() == "raw" and _int(header.get("line skip", "0")) == 0
        skip = _int(header.get("byte skip", "0"))
        need = expected if raw else 0
    data, start = location
    size = data.stat().st_size
    available = size - start - (max(skip, 0) if skip != -1 else 0)
    if need > 0 and available < need:
        raise read_error(
            "truncated_pixel_data", path, f"{fmt} pixel data has {max(available, 0)} bytes, the header needs {need}"
        )


def _int(text: str) -> int:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def _spacing(
    spacing: tuple[float, ...], axes: tuple[int, int], header: dict[str, Any], fmt: str
) -> tuple[list[float] | None, str | None]:
    """[row, col] spacing (mm, ITK's unit) when the header states it; ITK's default of 1 is not reported."""
    key = next((k for k in _SPACING_KEYS[fmt] if k in header), None)
    a, b = axes
    if key is None or b < 0:
        return None, None
    values = [float(spacing[b]), float(spacing[a])]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None, None
    return values, key
