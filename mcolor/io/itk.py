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

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.io.common import new_meta, read_error, to_unit_range
from mcolor.io.planes import check_components, check_finite, extract_plane, plane_axes, sample_meta, to_gray

#: Header text read at most (MetaImage and NRRD headers are a few hundred bytes; comments may add some).
MAX_HEADER_BYTES = 1 << 16
_IMAGE_IO = {"metaimage": "MetaImageIO", "nrrd": "NrrdImageIO"}
_SPACING_KEYS = {"metaimage": ("ElementSpacing", "ElementSize"), "nrrd": ("spacings", "space directions")}
_METAIMAGE_END = re.compile(rb"(?m)^[ \t]*ElementDataFile[ \t]*=[^\n]*\n")  # the last header line, complete
_NRRD_END = re.compile(rb"\n\r?\n")  # the blank line before attached data
#: Bytes per sample of the MetaImage element types read from the text (others: SimpleITK decides).
_MET_SIZES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}
#: Bytes per sample of the NRRD types (the spellings of the NRRD0005 specification).
_NRRD_SIZES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                     "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                     "uint64_t", "double"), 8),
}
_TRUNCATION = re.compile(r"got only|but received|not read completely|unexpected end|premature|truncat", re.I)


@dataclass(frozen=True)
class _Geometry:
    """What the header says, in index order (x first): sizes, samples per pixel, bytes per sample, spacing."""

    size: tuple[int, ...]
    components: int
    itemsize: int
    spacing: tuple[float, ...] | None


def read_itk(path: Path, fmt: str, *, max_pixels: int, head: bytes = b"") -> tuple[np.ndarray, dict[str, Any]]:
    """Read a MetaImage (``fmt="metaimage"``) or NRRD (``"nrrd"``) radiograph; see ``read_radiograph``.

    ``head``: the first bytes of the file, already read by the dispatcher; when the whole header is in
    them (the usual case) the file is not read again here.
    """
    header = _parse_header(path, fmt, head)
    location = _data_file(header, fmt, path)
    import SimpleITK as sitk  # lazy: PNG and DICOM reads never import it

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(_IMAGE_IO[fmt])  # by content, whatever the extension says
    geometry = _text_geometry(header, fmt) or _itk_geometry(sitk, reader, fmt, path)
    check_components(geometry.components, path)
    axes = plane_axes(geometry.size, path, max_pixels)
    if location is not None:
        nbytes = math.prod(geometry.size) * geometry.components * geometry.itemsize
        _check_length(header, fmt, path, location, nbytes)
    meta = new_meta(fmt)
    meta["pixel_spacing"], meta["pixel_spacing_source"] = _spacing(geometry.spacing, axes, header, fmt)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        reason = "truncated_pixel_data" if _TRUNCATION.search(str(exc)) else "decode_failed"
        raise read_error(reason, path, f"{fmt} pixel data could not be read ({_itk_reason(exc)})") from exc
    got = (tuple(int(n) for n in image.GetSize()), int(image.GetNumberOfComponentsPerPixel()))
    if got != (geometry.size, geometry.components):
        raise read_error("decode_failed", path, f"SimpleITK read {got}, the header says {geometry}")
    voxels = sitk.GetArrayViewFromImage(image)  # (..., z, y, x[, c]); a view: ``image`` stays alive below
    if voxels.dtype.kind not in "uifb":
        raise read_error("unsupported_photometric", path, f"{voxels.dtype} (complex) pixels are not a gray image")
    vector = geometry.components > 1
    spatial = voxels.ndim - vector
    order = tuple(reversed(range(spatial))) + ((spatial,) if vector else ())
    plane = extract_plane(voxels.transpose(order), axes, components=vector)
    sample_meta(meta, plane.dtype)
    gray = to_gray(plane, geometry.components, path, meta)
    check_finite(gray, path)
    meta["original_shape"] = [int(gray.shape[0]), int(gray.shape[1])]
    return to_unit_range(gray, meta["applied"]), meta


def _itk_geometry(sitk: Any, reader: Any, fmt: str, path: Path) -> _Geometry:
    """The geometry as SimpleITK reads it from the header (``ReadImageInformation``, no pixel read)."""
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise read_error("decode_failed", path, f"{fmt} header could not be read ({_itk_reason(exc)})") from exc
    size, components = tuple(int(n) for n in reader.GetSize()), int(reader.GetNumberOfComponents())
    itemsize = _component_size(sitk, int(reader.GetPixelID()), len(size), components)
    return _Geometry(size, components, itemsize, tuple(float(v) for v in reader.GetSpacing()))


@functools.lru_cache(maxsize=64)
def _component_size(sitk: Any, pixel_id: int, ndim: int, components: int) -> int:
    return int(sitk.Image([1] * ndim, pixel_id, components).GetSizeOfPixelComponent())


def _text_geometry(header: dict[str, Any], fmt: str) -> _Geometry | None:
    """The geometry from the text header for the plain, common layouts; None sends the header to SimpleITK.

    ``ReadImageInformation`` costs about as much CPU as decoding a 512 x 512 image, so the layouts whose
    reading is unambiguous are taken from the text: MetaImage (``DimSize``, ``ElementNumberOfChannels``,
    ``ElementType``) and NRRD with every axis spatial (no ``kinds`` other than ``domain``/``space``, no
    ``none`` direction). The parser refuses repeated fields, and the image SimpleITK returns is checked
    against this geometry, so the two readings cannot silently differ.
    """
    if fmt == "metaimage":
        itemsize = _MET_SIZES.get(header.get("ElementType", ""))
        channels = header.get("ElementNumberOfChannels", "1")
        if itemsize is None or not channels.isdigit() or int(channels) < 1:
            return None
        size = tuple(int(n) for n in header["DimSize"].split())
        spacing = _floats(header.get("ElementSpacing", header.get("ElementSize", "")), len(size))
        return _Geometry(size, int(channels), itemsize, spacing)
    itemsize = _NRRD_SIZES.get(" ".join(header.get("type", "").split()).lower())
    sizes = header.get("sizes", "").split()
    dimension = header.get("dimension", "")
    kinds = header.get("kinds", "domain " * len(sizes)).split()
    directions = header.get("space directions", "")
    if (
        itemsize is None
        or not dimension.isdigit()
        or len(sizes) != int(dimension)
        or not all(n.isdigit() and int(n) > 0 for n in sizes)
        or len(kinds) != len(sizes)
        or any(kind.lower() not in ("domain", "space") for kind in kinds)
        or "none" in directions.lower()
    ):
        return None
    size = tuple(int(n) for n in sizes)
    if directions:
        vectors = re.findall(r"\(([^)]*)\)", directions)
        norms = [math.sqrt(sum(float(c) ** 2 for c in v.split(","))) for v in vectors] if vectors else []
        spacing = tuple(norms) if len(norms) == len(size) else None
    else:
        spacing = _floats(header.get("spacings", ""), len(size))
    return _Geometry(size, 1, itemsize, spacing)


def _floats(text: str, n: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        return None
    return values if len(values) == n else None


def _itk_reason(exc: Exception) -> str:
    """The informative tail of a SimpleITK exception (its head is a source-file location)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " / ".join(lines[-2:])[-300:] if lines else type(exc).__name__


def _parse_header(path: Path, fmt: str, head: bytes = b"") -> dict[str, Any]:
    """Key/value fields of the text header, plus ``_end`` (offset of the first data byte, None if not found).

    MetaImage: ``Key = Value`` lines, the last one ``ElementDataFile``. NRRD: the ``NRRD000x`` magic line,
    then ``field: value`` lines (``#`` comments, ``key:=value`` pairs) up to a blank line (attached data)
    or the end of the file (detached header). A header that is not such text is ``decode_failed``.
    """
    end = _METAIMAGE_END if fmt == "metaimage" else _NRRD_END
    raw = head if end.search(head) else _read_header_bytes(path, end)
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
            _add_field(fields, key.strip().lower(), value.strip(), path)
        else:
            if not text.strip():
                continue
            key, sep, value = text.partition("=")
            if not sep:
                raise read_error("decode_failed", path, f"MetaImage header line {number + 1} is not 'Key = Value'")
            _add_field(fields, key.strip(), value.strip(), path)
            if key.strip() == "ElementDataFile":
                fields["_end"] = min(pos, len(raw))
                break
    if fmt == "metaimage":
        _check_metaimage_fields(fields, path)
    if fmt == "nrrd" and fields["_end"] is None and len(raw) < MAX_HEADER_BYTES:
        fields["_end"] = len(raw)  # header up to the end of the file: a detached header (.nhdr)
    return fields


def _read_header_bytes(path: Path, end: re.Pattern[bytes]) -> bytes:
    """The file's first bytes up to ``end`` (or its end, or :data:`MAX_HEADER_BYTES`), in growing steps."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4096)
            while not end.search(raw) and len(raw) < MAX_HEADER_BYTES:
                more = fh.read(min(16384, MAX_HEADER_BYTES - len(raw)))
                if not more:
                    break
                raw += more
    except OSError as exc:
        raise read_error("unreadable_file", path, f"cannot read ({type(exc).__name__}: {exc})") from exc
    return raw


def _add_field(fields: dict[str, Any], key: str, value: str, path: Path) -> None:
    """A field seen twice is refused: which copy a reader honours is not specified (a bomb could hide in it)."""
    seen = fields.setdefault("_seen", set())
    if key.lower() in seen:
        raise read_error("decode_failed", path, f"header field {key!r} appears twice")
    seen.add(key.lower())
    fields[key] = value


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


def _data_file(header: dict[str, Any], fmt: str, path: Path) -> tuple[Path, int, int] | None:
    """Where the pixel bytes are: ``(file, offset, file size)``; None for multi-file data (a list or a file-name
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
        start, size = header["_end"], path.stat().st_size
        if start is None or start >= size:
            raise read_error("no_pixel_data", path, f"{fmt} header without pixel data after it")
        return path, start, size
    data = path.parent / name
    folder = path.parent.resolve()
    if not data.resolve().is_relative_to(folder):
        # MetaIO and teem would follow an absolute or ../ path anywhere on the disk and return that file's
        # bytes as pixels: a header received with a dataset must not read outside the dataset.
        raise read_error("no_pixel_data", path, f"{fmt} data file {name!r} is outside the header's folder")
    if not data.is_file():
        raise read_error("no_pixel_data", path, f"{fmt} data file {name!r} is missing")
    return data, 0, data.stat().st_size


def _check_length(
    header: dict[str, Any], fmt: str, path: Path, location: tuple[Path, int, int], expected: int
) -> None:
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
    _, start, size = location
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
    spacing: tuple[float, ...] | None, axes: tuple[int, int], header: dict[str, Any], fmt: str
) -> tuple[list[float] | None, str | None]:
    """[row, col] spacing (mm, ITK's unit) when the header states it; ITK's default of 1 is not reported."""
    key = next((k for k in _SPACING_KEYS[fmt] if k in header), None)
    a, b = axes
    if key is None or spacing is None or b < 0 or max(a, b) >= len(spacing):
        return None, None
    values = [float(spacing[b]), float(spacing[a])]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None, None
    return values, key
