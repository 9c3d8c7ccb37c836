"""Pieces shared by the format readers: error codes, the meta template, min-max scaling.

Kept separate from :mod:`mcolor.io.radiograph` so that the format modules do not import the
dispatcher (no import cycles) and so that the reason codes live in exactly one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcolor.errors import RadiographReadError

#: Every ``reason`` a :class:`~mcolor.errors.RadiographReadError` raised by the reader can carry.
#:
#: * ``not_a_file``: the path is missing, a directory, or not a regular file (FIFO, socket...).
#: * ``unreadable_file``: the OS refused to read it (permissions, I/O error).
#: * ``empty_file``: zero bytes.
#: * ``not_an_image``: by content (not extension) none of the formats in :data:`mcolor.io.FORMATS`.
#: * ``no_pixel_data``: a DICOM without (integer) Pixel Data, or without Rows/Columns; a MetaImage / NRRD /
#:   NIfTI header whose data file is missing (or outside the header's folder) or that has no data after it.
#: * ``truncated_pixel_data``: the file ends before the pixel data does.
#: * ``unsupported_photometric``: colour (RGB, YBR_*, PALETTE COLOR) or SamplesPerPixel != 1 in DICOM;
#:   vector pixels that are neither RGB(A) nor equal copies (MetaImage / NRRD / NIfTI); complex samples.
#: * ``multi_frame``: more than one frame (DICOM NumberOfFrames > 1, multi-page TIFF, APNG, a volume or
#:   time series with more than one slice).
#: * ``unsupported_transfer_syntax``: no installed decoder; the message names the plugin(s).
#: * ``too_large``: Rows x Columns (or the raster / volume plane size) above ``max_pixels``, checked before
#:   decoding.
#: * ``non_image_sop``: a DICOM SOP class that is not an image (SR, presentation state, PDF...).
#: * ``decode_failed``: any other decoder failure (also an unparsable MetaImage / NRRD / NIfTI header, or
#:   NaN / infinity in a float image); the message names the original exception or problem.
READ_ERROR_REASONS: tuple[str, ...] = (
    "not_a_file",
    "unreadable_file",
    "empty_file",
    "not_an_image",
    "no_pixel_data",
    "truncated_pixel_data",
    "unsupported_photometric",
    "multi_frame",
    "unsupported_transfer_syntax",
    "too_large",
    "non_image_sop",
    "decode_failed",
)

#: Default cap on Rows x Columns: 8192 x 8192 (64 Mpx, 256 MiB as float32). The largest clinical
#: radiographs (full-field mammograms, stitched long-leg studies) stay below 30 Mpx, so anything
#: bigger is a corrupt header or a decompression bomb rather than a real image.
DEFAULT_MAX_PIXELS: int = 8192 * 8192

#: Keys every ``meta`` dict carries (``None`` where the format has no such field), so that
#: downstream code never needs ``.get`` and metadata from DICOM and PNG look the same.
META_KEYS: tuple[str, ...] = (
    "source_format",
    "photometric_interpretation",
    "bits_stored",
    "bits_allocated",
    "pixel_representation",
    "pixel_spacing",
    "pixel_spacing_source",
    "modality",
    "body_part",
    "view_position",
    "laterality",
    "sop_class_uid",
    "sop_instance_uid",
    "study_instance_uid",
    "series_instance_uid",
    "transfer_syntax",
    "transfer_syntax_name",
    "window",
    "pil_mode",
    "original_shape",
    "applied",
)


def read_error(reason: str, path: str | Path, detail: str) -> RadiographReadError:
    """Build a :class:`RadiographReadError` whose message starts with the file name.

    Asserting the reason here keeps :data:`READ_ERROR_REASONS` the complete, documented list.
    """
    if reason not in READ_ERROR_REASONS:  # pragma: no cover - programming error
        raise AssertionError(f"undocumented read error reason {reason!r}")
    return RadiographReadError(f"{path}: {detail}", reason=reason, path=path)


def new_meta(source_format: str) -> dict[str, Any]:
    """Return a meta dict with every :data:`META_KEYS` entry present."""
    meta: dict[str, Any] = dict.fromkeys(META_KEYS)
    meta["source_format"] = source_format
    meta["applied"] = []
    return meta


def to_unit_range(
    x: np.ndarray,
    applied: list[str],
    *,
    invert: bool = False,
    clip_to: tuple[float, float] | None = None,
    valid: np.ndarray | None = None,
    consume: bool = False,
) -> np.ndarray:
    """Min-max scale ``x`` to float32 ``[0, 1]``, optionally clipped and inverted, in few passes.

    Min-max over the data (not over the nominal bit range) is what makes the same picture read
    identically from 8-bit PNG and 12-bit DICOM. ``clip_to`` applies a linear VOI window: a
    linear window followed by min-max equals clipping to the window and then min-max, which costs
    one pass instead of pydicom's several float64 passes. ``invert`` maps to ``(max - x) / span``
    (MONOCHROME1). ``valid`` excludes pixel padding from the statistics; padding becomes 0.
    A constant image gives zeros (no division by zero) and records ``"constant_image"``.
    ``consume=True`` lets the function overwrite ``x`` (a decoded array nobody else holds).

    The result is the float32 evaluation of ``(x - lo) / span`` (or ``(hi - x) / span``), bit for bit,
    whichever way it is computed; what varies is only the number of passes over memory.
    """
    stats = x if valid is None else x[valid]
    if stats.size == 0:
        lo = hi = 0.0
    else:
        lo, hi = float(stats.min()), float(stats.max())
    need_clip = False
    if clip_to is not None:
        wlo, whi = clip_to
        need_clip = wlo > lo or whi < hi
        lo, hi = min(max(lo, wlo), whi), max(min(hi, whi), wlo)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    span = np.float32(hi32 - lo32)
    if not span > 0:
        applied.append("constant_image")
        return np.zeros(x.shape, dtype=np.float32)
    if invert:
        applied.append("invert_monochrome1")
    # Integer offsets are exact when every value lies in [lo, hi]: after clipping the integers to a window
    # with integral bounds, or with no window (pixels outside ``valid`` may lie outside, but they are
    # zeroed below whatever they became). Clipping x to [lo, hi] then scaling equals scaling then clipping
    # to [0, 1] bit for bit: the clipped extremes give (lo - lo) / span = 0 and (hi - lo) / span = 1.
    if need_clip and _small_ints(x) and lo.is_integer() and hi.is_integer() and _fits(lo, hi, x.dtype):
        bounds = np.array([lo, hi]).astype(x.dtype)
        x = np.clip(x, bounds[0], bounds[1], out=x if consume and x.flags.writeable else None)
        consume, need_clip = True, False
    out = _offset_float32(x, lo, hi, lo32, hi32, invert, consume, exact_ints=not need_clip)
    if span != 1:  # dividing by 1 would not change a bit (8-bit data spanning 0..1 after offset is rare)
        np.divide(out, span, out=out)
    if need_clip:
        np.clip(out, 0.0, 1.0, out=out)
    if valid is not None:
        out[~valid] = 0.0
    applied.append("minmax")
    return out


def _small_ints(x: np.ndarray) -> bool:
    """8/16-bit integers in native byte order (unsigned views of them are taken below)."""
    return x.dtype.kind in "ui" and x.dtype.itemsize <= 2 and x.dtype.isnative


def _fits(lo: float, hi: float, dtype: np.dtype) -> bool:
    """Both bounds representable in ``dtype`` (a window may lie entirely outside the stored range)."""
    info = np.iinfo(dtype)
    return info.min <= lo <= hi <= info.max


def _offset_float32(
    x: np.ndarray,
    lo: float,
    hi: float,
    lo32: np.float32,
    hi32: np.float32,
    invert: bool,
    consume: bool,
    *,
    exact_ints: bool,
) -> np.ndarray:
    """A new C-contiguous float32 array holding ``x - lo`` (or ``hi - x``), evaluated as float32.

    Mixed-dtype ufuncs (``np.subtract(x_uint16, lo, dtype=float32)``) run numpy's buffered casting
    loop, about twice the cost of one contiguous ``astype`` followed by in-place float32 passes. For
    8/16-bit integers with integral bounds the offset is taken first, in the integers: ``hi - x`` and
    ``x - lo`` lie in ``[0, 2**16)``, so modular unsigned arithmetic gives them exactly, and the cast
    is then exact too, the same values as the float32 subtraction of the exactly representable
    ``float32(x)`` and bound, at half the memory traffic (the integer array is a quarter of the float
    one when 8-bit, half when 16-bit). Passes that would change nothing (subtracting 0) are skipped.
    """
    if exact_ints and _small_ints(x) and lo.is_integer() and hi.is_integer():
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        u = x.view(unsigned)
        target = u if consume and x.flags.writeable else None
        if invert:
            u = np.subtract(np.array(int(hi), x.dtype).view(unsigned), u, out=target)
        elif lo != 0:
            u = np.subtract(u, np.array(int(lo), x.dtype).view(unsigned), out=target)
        return u.astype(np.float32, order="C")
    out = x.astype(np.float32, order="C")
    if invert:
        np.subtract(hi32, out, out=out)
    elif lo32 != 0:
        np.subtract(out, lo32, out=out)
    return out
