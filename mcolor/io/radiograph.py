"""``read_radiograph``: the single reader for training, evaluation and inference.

The format is decided by content (magic bytes, header text), never by the file extension: ``.dcm`` files
that are really PNGs and extension-less DICOMs are common in exported datasets. Detached data files
(the ``.raw`` of an ``.mhd``/``.nhdr``, the ``.img`` of a NIfTI ``.hdr``) are read through their header.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mcolor.errors import ConfigError, RadiographReadError
from mcolor.io.common import DEFAULT_MAX_PIXELS, read_error
from mcolor.io.dicom import read_dicom
from mcolor.io.nifti import GZIP_MAGIC, inflate_head, nifti_version
from mcolor.io.raster import read_raster

VOI_MODES: tuple[str, ...] = ("auto", "none")
#: Every format the reader recognises (the ``source_format`` of the meta).
FORMATS: tuple[str, ...] = ("dicom", "png", "jpeg", "tiff", "metaimage", "nrrd", "nifti")
#: Bytes read to recognise a format: DICOM needs 132, NIfTI-1 348 (inflated), a gzip header a few more.
HEAD_BYTES = 1024
_RASTER_FORMATS = ("png", "jpeg", "tiff")
# MetaImage: a text header whose first line is ``ObjectType = Image`` or ``NDims = <n>`` (MetaIO order).
_METAIMAGE_FIRST_LINE = re.compile(rb"\A\s*(ObjectType\s*=\s*Image|NDims\s*=\s*\d+)\s*\r?\n")

_RASTER_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
)
_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FL",
    b"FD",
    b"IS",
    b"LO",
    b"LT",
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"PN",
    b"SH",
    b"SL",
    b"SQ",
    b"SS",
    b"ST",
    b"SV",
    b"TM",
    b"UC",
    b"UI",
    b"UL",
    b"UN",
    b"UR",
    b"US",
    b"UT",
    b"UV",
}


def read_radiograph(
    path: str | os.PathLike[str],
    voi: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one radiograph as float32 ``(H, W)`` in ``[0, 1]``, bright = attenuating (bone bright).

    Args:
        path: a DICOM (single frame, MONOCHROME1/2), PNG, JPEG, TIFF, MetaImage (``.mha``, ``.mhd``),
            NRRD (``.nrrd``, ``.nhdr``) or NIfTI (``.nii``, ``.nii.gz``, ``.hdr``) file holding one 2-D image
            (a volume with a single slice is accepted); recognised by content, not by extension.
        voi: ``"auto"`` applies the DICOM VOI LUT / window when present (what a radiologist sees);
            ``"none"`` keeps the full stored range (modality LUT and MONOCHROME1 inversion still apply).
        max_pixels: reject images with more pixels than this, from the header, before decoding.

    Returns:
        ``(image, meta)``; ``meta`` is a JSON-serialisable dict with the keys of
        :data:`mcolor.io.common.META_KEYS` (source format, photometric interpretation, bits, pixel
        spacing [row, col] mm, modality, body part, view, UIDs, transfer syntax, original shape and
        ``applied``, the processing steps in order). It never holds patient identifiers or the path
        (file names may carry PHI; the caller has the path anyway).

    Raises:
        RadiographReadError: with ``reason`` in :data:`mcolor.io.READ_ERROR_REASONS`; no raw
            pydicom/Pillow/SimpleITK/nibabel/numpy exception escapes. The file is never modified.
        ConfigError: ``voi`` or ``max_pixels`` is invalid (a caller bug, not a bad file).
    """
    if voi not in VOI_MODES:
        raise ConfigError(f"voi must be one of {VOI_MODES}, got {voi!r}", reason="bad_voi")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"max_pixels must be a positive int, got {max_pixels!r}", reason="bad_max_pixels")
    try:
        p = Path(os.fspath(path))
    except TypeError as exc:
        raise read_error(
            "not_a_file", repr(path), f"expected a file path, got {type(path).__name__}"
        ) from exc
    fh, head = _open_head(p)
    with fh:
        fmt = _sniff(head)
        try:
            if fmt in _RASTER_FORMATS:  # Pillow reads from the handle already open: one open() per file
                fh.seek(0)
                return read_raster(p, fmt, max_pixels=max_pixels, fh=fh)
            fh.close()
            return _read_other(p, fmt, head, voi, max_pixels)
        except RadiographReadError:
            raise
        except MemoryError as exc:
            raise read_error("too_large", p, "ran out of memory while decoding") from exc
        except Exception as exc:  # the contract: nothing raw escapes, whatever the decoder does
            raise read_error("decode_failed", p, f"unexpected {type(exc).__name__}: {exc}") from exc


def _read_other(p: Path, fmt: str | None, head: bytes, voi: str, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
    """DICOM and the volume formats, each read by path (pydicom, SimpleITK and nibabel open their files)."""
    if fmt == "dicom":
        return read_dicom(p, voi=voi, max_pixels=max_pixels, force=head[128:132] != b"DICM")
    if fmt in ("metaimage", "nrrd"):
        from mcolor.io.itk import read_itk  # SimpleITK is imported in there, lazily

        return read_itk(p, fmt, max_pixels=max_pixels, head=head)
    if fmt == "nifti":
        from mcolor.io.nifti import read_nifti

        return read_nifti(p, max_pixels=max_pixels, head=head)
    raise read_error(
        "not_an_image", p, "by content none of DICOM, PNG, JPEG, TIFF, MetaImage, NRRD or NIfTI"
    )


def _head(p: Path) -> bytes:
    """stat + first :data:`HEAD_BYTES` bytes, with the OS failures mapped to reason codes."""
    fh, head = _open_head(p)
    fh.close()
    return head


def _open_head(p: Path) -> tuple[BinaryIO, bytes]:
    """The file opened for reading (the caller closes it) and its first :data:`HEAD_BYTES` bytes.

    ``stat`` comes first: opening a FIFO would block, and a directory or device is not a radiograph.
    """
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise read_error("not_a_file", p, "no such file") from exc
    except OSError as exc:
        raise read_error("unreadable_file", p, f"cannot stat ({type(exc).__name__}: {exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise read_error("not_a_file", p, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise read_error("not_a_file", p, "is not a regular file")
    if st.st_size == 0:
        raise read_error("empty_file", p, "file is empty (0 bytes)")
    try:
        fh = open(p, "rb")  # noqa: SIM115 - returned open on purpose
    except OSError as exc:
        raise read_error("unreadable_file", p, f"cannot read ({type(exc).__name__}: {exc})") from exc
    try:
        return fh, fh.read(HEAD_BYTES)
    except OSError as exc:
        fh.close()
        raise read_error("unreadable_file", p, f"cannot read ({type(exc).__name__}: {exc})") from exc


def _sniff(head: bytes) -> str | None:
    """One of :data:`FORMATS`, or None, from the first bytes of the file (:data:`HEAD_BYTES` of them).

    MetaImage is the only format recognised from text (its first header line); gzip counts only when its
    first bytes inflate (bounded) to a NIfTI header: that is how ``.nii.gz`` files look, while gzip-encoded
    NRRD and zlib-compressed MetaImage keep their plain-text headers.
    """
    if head[128:132] == b"DICM":
        return "dicom"
    for magic, fmt in _RASTER_MAGIC:
        if head.startswith(magic):
            return fmt
    if head.startswith(b"NRRD000"):
        return "nrrd"
    if nifti_version(head) is not None:
        return "nifti"
    if head.startswith(GZIP_MAGIC):
        return "nifti" if nifti_version(inflate_head(head)) is not None else None
    if _METAIMAGE_FIRST_LINE.match(head):
        return "metaimage"
    return "dicom" if _looks_like_bare_dicom(head) else None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set without preamble: starts with a group 0002/0008 tag, then a VR or a length."""
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element > 0x0100:
        return False
    if head[4:6] in _VRS:
        return True
    (length,) = struct.unpack("<I", head[4:8])
    return length < 0x10000
