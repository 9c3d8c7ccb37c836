"""NIfTI-1 / NIfTI-2 (``.nii``, ``.nii.gz``, ``.hdr`` + ``.img`` pairs) with nibabel.

nibabel parses the header (either byte order, both versions) and reads the voxels (``array_from_file``);
it is imported inside :func:`read_nifti` only, so reading a PNG or DICOM never imports it. The file is
opened by content, not through ``nibabel.load``, which picks the format from the file name and so would
refuse a NIfTI named ``.dcm`` or without extension. Gzip is followed only here: a gzip file whose first
bytes inflate to a NIfTI header; only the header and then the one plane are inflated (no bomb).

Every header check (dimensions, the one-plane rule, ``max_pixels``, the data file and its length) runs
before a voxel is read. Orientation: see :mod:`mcolor.io.planes` (NIfTI's ``i`` axis is the column axis,
``j`` the row axis, the affine is not applied). ``scl_slope`` / ``scl_inter`` are applied as
``modality_lut`` when they are not the identity.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mcolor.io.common import new_meta, read_error, to_unit_range
from mcolor.io.planes import check_components, check_finite, extract_plane, plane_axes, sample_meta, to_gray

GZIP_MAGIC = b"\x1f\x8b"
#: NIfTI intent codes whose 5th dimension holds the components of one pixel (vector, RGB, RGBA...).
_VECTOR_INTENTS = {1006, 1007, 2003, 2004}
_MM_PER_UNIT = {"mm": 1.0, "meter": 1000.0, "micron": 0.001}


def nifti_version(head: bytes) -> tuple[int, bool] | None:
    """``(1 or 2, single_file)`` when ``head`` (>= 348 bytes, uncompressed) starts a NIfTI header, else None.

    NIfTI-1: ``sizeof_hdr`` = 348 (either byte order) and magic ``n+1\\0`` (``.nii``) or ``ni1\\0`` (a
    ``.hdr`` whose voxels are in the ``.img`` beside it) at offset 344. NIfTI-2: 540 and ``n+2\\0`` /
    ``ni2\\0`` at offset 4. Plain Analyze 7.5 headers (no magic) are not recognised.
    """
    if len(head) >= 348 and head[:4] in (struct.pack("<i", 348), struct.pack(">i", 348)):
        magic = head[344:348]
        if magic in (b"n+1\x00", b"ni1\x00"):
            return 1, magic == b"n+1\x00"
    if len(head) >= 8 and head[:4] in (struct.pack("<i", 540), struct.pack(">i", 540)):
        magic = head[4:8]
        if magic in (b"n+2\x00", b"ni2\x00"):
            return 2, magic == b"n+2\x00"
    return None


def inflate_head(head: bytes, size: int = 540) -> bytes:
    """The first ``size`` bytes of a gzip stream whose first compressed bytes are ``head`` (b"" if invalid).

    Bounded: at most ``size`` bytes come out however the stream is crafted.
    """
    try:
        return zlib.decompressobj(wbits=31).decompress(head, size)
    except zlib.error:
        return b""


def read_nifti(path: Path, *, max_pixels: int, head: bytes = b"") -> tuple[np.ndarray, dict[str, Any]]:
    """Read a NIfTI radiograph; see ``read_radiograph`` for the contract.

    ``head``: the file's first bytes if the caller has them (they tell gzip from plain without a read).
    """
    import nibabel  # lazy: see the module docstring
    from nibabel.spatialimages import HeaderDataError
    from nibabel.volumeutils import array_from_file

    compressed = head.startswith(GZIP_MAGIC) if head else _is_gzip(path)
    try:
        with _open(path, compressed) as fh:
            version = nifti_version(fh.read(540))
            if version is None:
                raise read_error("not_an_image", path, "no NIfTI-1/NIfTI-2 header")
            number, single = version
            header_class = nibabel.Nifti1Header if number == 1 else nibabel.Nifti2Header
            fh.seek(0)
            try:
                with _quiet_nibabel():
                    header = header_class.from_fileobj(fh, check=True)
            except (HeaderDataError, ValueError) as exc:
                raise read_error("decode_failed", path, f"NIfTI header is invalid ({exc})") from exc
            shape, dtype, components = _layout(header)
            check_components(components, path)
            axes = plane_axes(shape, path, max_pixels)
            meta = new_meta("nifti")
            meta["pixel_spacing"], meta["pixel_spacing_source"] = _spacing(header, axes)
            data_path, data_compressed = (path, compressed) if single else _pair_image(path)
            offset = int(header.get_data_offset())
            full_shape = shape + ((components,) if components > 1 and dtype.names is None else ())
            nbytes = math.prod(full_shape) * dtype.itemsize
            size = data_path.stat().st_size
            if not data_compressed and offset + nbytes > size:
                raise read_error(
                    "truncated_pixel_data", path, f"NIfTI voxel data has {max(size - offset, 0)} bytes, needs {nbytes}"
                )
            with contextlib.nullcontext(fh) if single else _open(data_path, data_compressed) as data:
                voxels = array_from_file(full_shape, dtype, data, offset, order="F")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise read_error("truncated_pixel_data" if isinstance(exc, EOFError) else "decode_failed", path,
                         f"gzip stream is damaged or ends early ({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        reason = "truncated_pixel_data" if "Expected" in str(exc) else "decode_failed"
        raise read_error(reason, path, f"NIfTI voxels could not be read ({type(exc).__name__}: {exc})") from exc
    if dtype.names is not None:  # RGB24 / RGBA32: one structured sample per voxel
        voxels = np.stack([voxels[name] for name in dtype.names], axis=-1)
    if voxels.dtype.kind not in "uifb":
        raise read_error("unsupported_photometric", path, f"{voxels.dtype} (complex) voxels are not a gray image")
    plane = extract_plane(voxels, axes, components=components > 1)
    sample_meta(meta, plane.dtype)
    gray = to_gray(plane, components, path, meta)
    gray = _rescale(gray, header, meta["applied"])
    check_finite(gray, path)
    meta["original_shape"] = [int(gray.shape[0]), int(gray.shape[1])]
    return to_unit_range(gray, meta["applied"]), meta


@contextlib.contextmanager
def _quiet_nibabel() -> Any:
    """nibabel logs each header problem to the console (its own stream handler) before raising; the
    raised error carries the same text, so the log lines are only noise in training and inference logs."""
    from nibabel.imageglobals import logger

    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _open(path: Path, compressed: bool) -> Any:
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _layout(header: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """(spatial/time shape, sample dtype, components per voxel) from the header alone."""
    shape = tuple(int(n) for n in header.get_data_shape())
    dtype = np.dtype(header.get_data_dtype())
    if dtype.names is not None:
        return shape, dtype, len(dtype.names)
    if len(shape) >= 5 and shape[4] > 1 and int(header["intent_code"]) in _VECTOR_INTENTS:
        return shape[:4] + shape[5:], dtype, shape[4]
    return shape, dtype, 1


def _pair_image(path: Path) -> tuple[Path, bool]:
    """The ``.img`` (or ``.img.gz``) beside a ``.hdr`` header (``ni1``/``ni2``); ``no_pixel_data`` if absent."""
    name = path.name
    for suffix, image_suffix in ((".hdr.gz", ".img.gz"), (".hdr", ".img")):
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            for candidate in (image_suffix, image_suffix.upper()):
                image = path.with_name(stem + candidate)
                if image.is_file():
                    return image, _is_gzip(image)
    raise read_error("no_pixel_data", path, "NIfTI pair header (ni1/ni2) without its .img voxel file")


def _spacing(header: Any, axes: tuple[int, int]) -> tuple[list[float] | None, str | None]:
    """[row, col] in mm from ``pixdim`` when the header states the unit (mm, meter or micron)."""
    unit = header.get_xyzt_units()[0]
    a, b = axes
    zooms = header.get_zooms()
    if unit not in _MM_PER_UNIT or b < 0 or max(a, b) >= min(len(zooms), 3):
        return None, None
    values = [float(zooms[b]) * _MM_PER_UNIT[unit], float(zooms[a]) * _MM_PER_UNIT[unit]]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None, None
    return values, "pixdim"


def _rescale(gray: np.ndarray, header: Any, applied: list[str]) -> np.ndarray:
    """``scl_slope * x + scl_inter`` when the header sets a non-identity scaling (a modality LUT)."""
    slope, inter = header.get_slope_inter()
    slope = 1.0 if slope is None or not math.isfinite(slope) else float(slope)
    inter = 0.0 if inter is None or not math.isfinite(inter) else float(inter)
    if slope == 1.0 and inter == 0.0:
        return gray
    applied.append("modality_lut")
    return gray.astype(np.float64) * slope + inter
