"""PNG / JPEG / TIFF -> one grayscale float32 image in [0, 1] with Pillow.

Public datasets (NIH ChestX-ray14, TBX11K, CheXpert JPEGs) store radiographs as 8/16-bit gray or as
RGB with three equal channels; both must read to the same gray image as the DICOM they came from.
The size is checked from the header before any pixel is decoded (decompression bombs).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mcolor.io.common import new_meta, read_error, to_unit_range
from mcolor.io.pilview import pixels

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
_BITS = {
    "1": 1,
    "L": 8,
    "LA": 8,
    "La": 8,
    "P": 8,
    "PA": 8,
    "RGB": 8,
    "RGBA": 8,
    "RGBX": 8,
    "RGBa": 8,
    "I;16": 16,
    "I;16L": 16,
    "I;16B": 16,
    "I;16N": 16,
    "I": 32,
    "F": 32,
}
_SCRATCH_PIXELS = 65536  # 256 KiB of uint32: a block of rows that stays in the L2 cache
_SCRATCH = threading.local()  # one scratch buffer per thread (CacheDataset decodes in a thread pool)
_EXIF_ORIENTATION = 0x0112
_TIFF_PHOTOMETRIC = 262


def read_raster(
    path: Path, fmt: str, *, max_pixels: int, fh: BinaryIO | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a PNG/JPEG/TIFF radiograph as (H, W) float32 in [0, 1] plus meta (see ``read_radiograph``).

    ``fh``: the file already open at offset 0 (the dispatcher's, saving a second ``open``); ``path`` is
    then used for messages only.

    ``max_pixels`` is checked from the header, before ``load()``. Pillow's own bomb guard
    (``Image.MAX_IMAGE_PIXELS``, a process-wide setting we do not touch) is turned from a warning into
    the typed ``too_large`` error locally, or silenced when the caller allows more than it; its hard
    error (above twice that limit) always becomes ``too_large``.
    """
    meta = new_meta(fmt)
    pil_limit = Image.MAX_IMAGE_PIXELS
    action = "ignore" if pil_limit is not None and max_pixels > pil_limit else "error"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            im = Image.open(path if fh is None else fh, formats=[_PIL_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise read_error("too_large", path, f"Pillow decompression-bomb guard: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise read_error("not_an_image", path, f"Pillow cannot identify it as {fmt.upper()}") from exc
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise read_error("too_large", path, f"{height}x{width} pixels exceeds max_pixels={max_pixels}")
        if width < 1 or height < 1:
            raise read_error("decode_failed", path, f"image header declares size {width}x{height}")
        n_frames = getattr(im, "n_frames", 1)
        if n_frames > 1:
            raise read_error("multi_frame", path, f"{n_frames} frames/pages; expected one radiograph")
        meta["pil_mode"] = im.mode
        meta["bits_stored"] = meta["bits_allocated"] = _BITS.get(im.mode)
        if fmt == "jpeg" and im.mode == "RGB":
            _decode_luma_only(im, meta)
        try:
            im.load()
        except OSError as exc:
            reason = "truncated_pixel_data" if "truncated" in str(exc).lower() else "decode_failed"
            raise read_error(
                reason, path, f"pixel data could not be decoded ({type(exc).__name__}: {exc})"
            ) from exc
        gray = _gray_array(im, fmt, meta, path)
    meta["original_shape"] = [int(gray.shape[0]), int(gray.shape[1])]
    if gray.dtype.kind == "f" and not np.isfinite(gray).all():
        raise read_error("decode_failed", path, "floating-point image contains NaN or infinity")
    return to_unit_range(gray, meta["applied"]), meta


def _gray_array(im: Image.Image, fmt: str, meta: dict[str, Any], path: Path) -> np.ndarray:
    """Decoded Pillow image -> 2-D array of its native dtype, gray, alpha dropped, upright."""
    applied: list[str] = meta["applied"]
    if fmt in ("jpeg", "tiff") and im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
        applied.append("exif_transpose")
    white_is_zero = fmt == "tiff" and im.getexif().get(_TIFF_PHOTOMETRIC) == 0
    mode = im.mode
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        applied.append("palette_to_rgb")
        mode = im.mode
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
        mode = "RGB"
    if mode in ("LA", "La"):
        applied.append("drop_alpha")
        im = im.getchannel(0)
        mode = "L"
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        meta["photometric_interpretation"] = "RGB"
        return _rgb_to_gray(im, applied)
    arr = pixels(im)  # read-only, zero-copy where Pillow allows it: never modified in place below
    if meta["photometric_interpretation"] is not None:  # set by _decode_luma_only
        return arr
    if arr.ndim != 2:
        raise read_error("unsupported_photometric", path, f"Pillow mode {mode!r} is not a gray image")
    meta["photometric_interpretation"] = "MONOCHROME1" if white_is_zero else "MONOCHROME2"
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if white_is_zero:
        applied.append("invert_whiteiszero")
        if mode not in ("1", "L"):  # Pillow already inverts 1- and 8-bit WhiteIsZero, not 16/32-bit
            arr = arr.max() - arr if arr.dtype.kind in "ui" else -arr
    return arr


def _decode_luma_only(im: Image.Image, meta: dict[str, Any]) -> None:
    """Ask libjpeg for the luma (Y) plane only of a colour JPEG: about 2x faster than RGB.

    For gray stored as RGB (chest X-ray JPEG collections) the chroma planes are exactly neutral, so
    Y equals each of R, G and B bit for bit (tested); for a truly colour JPEG, Y *is* the ITU-R 601
    luminance that ``rgb_to_luminance`` would compute (up to rounding). Either way the answer is the
    gray image, without decoding and comparing three planes.
    """
    im.draft("L", im.size)
    if im.mode == "L":
        meta["photometric_interpretation"] = "RGB"  # what is stored; the decode is luma only
        meta["applied"].append("jpeg_luma")


def _rgb_to_gray(im: Image.Image, applied: list[str]) -> np.ndarray:
    """RGB-stored gray -> one channel (lossless); true colour -> ITU-R 601 luma (Pillow's ``L``).

    On the hot path for TBX11K-style datasets, so the channel test runs on a zero-copy view of
    Pillow's 4-bytes-per-pixel storage (see :func:`_channels_equal`), and only the red band is then
    extracted (by Pillow, into its own recycled memory): no split into three images.
    """
    if im.mode != "RGB":
        applied.append("drop_alpha")
        if im.mode == "RGBa":  # premultiplied alpha: let Pillow undo it
            im = im.convert("RGB")
    if _channels_equal(pixels(im)):
        applied.append("rgb_equal_channels")
        return pixels(im.getchannel(0))  # contiguous: min/max and the float cast run at SIMD speed
    applied.append("rgb_to_luminance")
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    return pixels(rgb.convert("L"))


def _channels_equal(px: np.ndarray) -> bool:
    """Whether R == G == B at every pixel of ``(H, W, 3 or 4)`` uint8 samples (a 4th byte is ignored).

    For Pillow's RGBX/RGBA storage, each pixel read as one little-endian uint32 is ``R | G << 8 | B << 16
    | A << 24``; ``(v ^ v >> 8) & 0xFFFF`` is ``(R ^ G) | (G ^ B) << 8``, zero exactly when the three
    colour bytes are equal. Contiguous integer passes, about 2x faster than comparing strided channel
    views, and no image is split into bands. The work goes in blocks of rows through a scratch buffer
    kept per thread: a full-size temporary would be fresh memory, page-faulted in on every image.
    """
    if px.ndim != 3 or px.shape[-1] != 4 or not px.flags.c_contiguous:
        return bool(np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 0], px[..., 2]))
    v = px.view("<u4")[..., 0]
    scratch = getattr(_SCRATCH, "buffer", None)
    if scratch is None or scratch.size < v.shape[1]:
        scratch = _SCRATCH.buffer = np.empty(max(_SCRATCH_PIXELS, v.shape[1]), dtype=np.uint32)
    rows = max(1, scratch.size // max(1, v.shape[1]))
    for top in range(0, v.shape[0], rows):
        block = v[top : top + rows]
        t = scratch[: block.size].reshape(block.shape)
        np.right_shift(block, 8, out=t)
        np.bitwise_xor(t, block, out=t)
        np.bitwise_and(t, 0xFFFF, out=t)
        if t.any():
            return False
    return True
