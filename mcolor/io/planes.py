"""From a (possibly 3-D, possibly multi-component) voxel array to the one 2-D gray radiograph.

Shared by the MetaImage/NRRD (:mod:`mcolor.io.itk`) and NIfTI (:mod:`mcolor.io.nifti`) readers, whose
files can hold volumes and vector images. Arrays here are in *index order*: axis 0 is the fastest-varying
image axis in the file (ITK's x / NIfTI's i, the columns), axis 1 the next (y / j, the rows), and so on.

The orientation rule, the same for every format mcolor reads: pixels are returned in storage order,
row = second index axis, column = first, with no resampling or flipping by direction cosines, ITK
``Direction`` / NRRD ``space directions`` or the NIfTI qform/sform affine (RAS or LPS alike). That is
what the DICOM reader does with Image Orientation (Patient), and what a PNG is: so the same picture
written by SimpleITK (``GetImageFromArray(png)``) into any of these formats, or by nibabel as
``Nifti1Image(png.T, affine)`` (NIfTI's own axis order, i = x = column), reads back row for row as the PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcolor.io.common import read_error


def plane_axes(shape: tuple[int, ...], path: Path, max_pixels: int) -> tuple[int, int]:
    """The two index axes holding the image, checked from the header before any voxel is read.

    A radiograph is 2-D: a 2-D image, or a 3-D (or more) one whose other axes are all singletons, in
    whatever position (``(W, H, 1)``, ``(1, W, H)``...). More than two axes longer than 1 is a stack of
    slices or frames (``multi_frame``). With fewer than two non-singleton axes (a 1 x N image), the
    lowest index axes are used.
    """
    if len(shape) == 0 or any(n < 1 for n in shape):
        raise read_error("no_pixel_data", path, f"header declares image size {tuple(shape)}")
    long_axes = [axis for axis, n in enumerate(shape) if n > 1]
    if len(long_axes) > 2:
        sizes = " x ".join(str(n) for n in shape)
        raise read_error(
            "multi_frame", path, f"a {sizes} volume (more than one slice or frame); expected one radiograph"
        )
    chosen = sorted((long_axes + [axis for axis in range(len(shape)) if axis not in long_axes])[:2])
    a, b = (chosen[0], chosen[1]) if len(chosen) == 2 else (chosen[0], -1)  # -1: a single row
    width, height = shape[a], (shape[b] if b >= 0 else 1)
    if width * height > max_pixels:
        raise read_error("too_large", path, f"{height}x{width} pixels exceeds max_pixels={max_pixels}")
    return a, b


def check_components(n_components: int, path: Path) -> None:
    """At most 4 samples per pixel (gray, RGB, RGBA, or a vector of copies), checked before decoding: a
    many-component vector image (a tensor or multi-echo field) is not a radiograph, and its size would
    be ``max_pixels`` times the component count."""
    if n_components > 4:
        raise read_error("unsupported_photometric", path, f"{n_components} components per pixel; at most 4")


def extract_plane(arr: np.ndarray, axes: tuple[int, int], *, components: bool) -> np.ndarray:
    """``(H, W)`` (or ``(H, W, C)``) view of an index-order array ``(X, Y, ...)`` (or ``(X, Y, ..., C)``).

    ``axes`` comes from :func:`plane_axes`; every other spatial axis is a singleton and is dropped.
    """
    a, b = axes
    index: list[Any] = [0] * (arr.ndim - 1 if components else arr.ndim)
    index[a] = slice(None)
    if b >= 0:
        index[b] = slice(None)
    plane = arr[tuple(index + ([slice(None)] if components else []))]
    if b < 0:
        plane = plane[:, None]
    return np.swapaxes(plane, 0, 1)  # index order (x, y) -> rows y, columns x


def to_gray(pixels: np.ndarray, n_components: int, path: Path, meta: dict[str, Any]) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` samples -> ``(H, W)`` gray, with raster.py's rules for colour.

    * 1 component: gray (MONOCHROME2).
    * every component equal at every pixel (RGB-stored gray, or a vector image of copies): the first one,
      lossless (``rgb_equal_channels``; an RGBA alpha is dropped first, ``drop_alpha``).
    * 3 or 4 components (RGB, RGBA) otherwise: ITU-R 601 luma, as Pillow's ``L`` (``rgb_to_luminance``).
    * 2 components that differ (a displacement field...): there is no gray image to take,
      ``unsupported_photometric`` (more than 4 components are refused from the header, see
      :func:`check_components`).
    """
    applied: list[str] = meta["applied"]
    if n_components == 1:
        meta["photometric_interpretation"] = "MONOCHROME2"
        return pixels if pixels.ndim == 2 else pixels[..., 0]
    colour = n_components in (3, 4)
    meta["photometric_interpretation"] = "RGB" if colour else "MONOCHROME2"
    if n_components == 4:
        applied.append("drop_alpha")
        pixels = pixels[..., :3]
    first = pixels[..., 0]
    if all(np.array_equal(first, pixels[..., c]) for c in range(1, pixels.shape[-1])):
        applied.append("rgb_equal_channels")
        return first
    if not colour:
        raise read_error(
            "unsupported_photometric", path, f"{n_components}-component vector pixels that differ; not a gray image"
        )
    applied.append("rgb_to_luminance")
    return luma(pixels)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of ``(..., 3)`` samples: Pillow's integer formula for 8-bit, else in float64."""
    if rgb.dtype == np.uint8:
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def sample_meta(meta: dict[str, Any], dtype: np.dtype) -> None:
    """``bits_stored`` / ``bits_allocated`` / ``pixel_representation`` from the sample type (DICOM's sense)."""
    meta["bits_stored"] = meta["bits_allocated"] = int(dtype.itemsize * 8)
    meta["pixel_representation"] = {"u": 0, "i": 1}.get(dtype.kind)


def check_finite(gray: np.ndarray, path: Path) -> None:
    """Float images must be finite: NaN/inf have no place on the [0, 1] scale (as for float TIFFs)."""
    if gray.dtype.kind == "f" and not np.isfinite(gray).all():
        raise read_error("decode_failed", path, "floating-point image contains NaN or infinity")
