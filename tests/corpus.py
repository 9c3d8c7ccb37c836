"""Malformed radiographs generated at test time from real files (no binary is committed).

:data:`CASES` lists every case of the malformed-input corpus: one file (or file-system object) built by
byte surgery or by a pydicom edit of a real DICOM (pydicom-data ``RG1_UNCI.dcm``, ``RG1_J2KI.dcm``,
``emri_small.dcm``; ``../shared/data/dicom/siim_*.dcm``) or a real PNG/JPEG (``../shared/data/radiographs``),
and the ``reason`` that :func:`mcolor.io.read_radiograph` must raise it with. ``reason=None`` marks the
few cases that must still *read* (corrupt text values are not a reason to drop the pixels).

Also home of the byte-level helpers the fuzzing tests mutate with. Not a test module (no ``test_`` prefix);
``tests/fuzz_atheris.py`` and the tests import it as ``corpus``.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SIIM_JPEG = SHARED / "data" / "dicom" / "siim_cr_chest_monochrome2_jpeg.dcm"
CHEST_PNG = SHARED / "data" / "radiographs" / "00000001_000.png"
CHEST_JPEG = SHARED / "data" / "radiographs" / "16747_3_1.jpg"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian
#: Values planted in every DICOM case; no error message may repeat them (messages reach logs and reports).
PLANTED_PHI = {"PatientName": "Corpus^Planted^Name", "PatientID": "CORPUS-PHI-0042", "PatientBirthDate": "19230405"}


class SourceMissing(Exception):
    """A real source file is not installed here (pydicom-data or ../shared): the case is skipped."""


# --- real sources ------------------------------------------------------------------------------------


def pydicom_file(name: str) -> Path:
    """A pydicom-data test file, or :class:`SourceMissing`."""
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file(name)
    except Exception as exc:  # pydicom-data absent or its index unreadable
        raise SourceMissing(f"pydicom test file {name}: {exc}") from exc
    if found is None:
        raise SourceMissing(f"pydicom test file {name} is unavailable (pip install pydicom-data)")
    return Path(str(found))


def shared_file(path: Path) -> Path:
    """A file of ``../shared`` beside the repository, or :class:`SourceMissing`."""
    if not path.is_file():
        raise SourceMissing(f"real data file {path} is absent")
    return path


def dataset_bytes(ds: object) -> bytes:
    """A pydicom dataset saved as a complete DICOM file (preamble, ``DICM``, file meta)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)  # type: ignore[attr-defined]
    return buf.getvalue()


def _read(raw: bytes) -> object:
    import pydicom

    return pydicom.dcmread(io.BytesIO(raw))


@functools.lru_cache(maxsize=1)
def rg1_native() -> bytes:
    """pydicom-data ``RG1_UNCI.dcm`` (real CR chest header, MONOCHROME1, window, PHI fields), its pixels
    subsampled 16x to 123 x 116 (16-bit native, Explicit VR Little Endian) so that every decode is fast."""
    import pydicom

    ds = pydicom.dcmread(pydicom_file("RG1_UNCI.dcm"))
    small = np.ascontiguousarray(ds.pixel_array[::16, ::16])
    ds.Rows, ds.Columns = small.shape
    ds.PixelData = small.tobytes()
    for keyword, value in PLANTED_PHI.items():
        setattr(ds, keyword, value)
    return dataset_bytes(ds)


@functools.lru_cache(maxsize=1)
def rg1_j2k() -> bytes:
    """:func:`rg1_native` compressed to JPEG 2000 Lossless (encapsulated, one fragment) with pylibjpeg."""
    from pydicom.uid import JPEG2000Lossless

    ds = _read(rg1_native())
    ds.compress(JPEG2000Lossless)  # type: ignore[attr-defined]
    return dataset_bytes(ds)


@functools.lru_cache(maxsize=1)
def chest_png() -> bytes:
    """NIH ChestX-ray14 ``00000001_000.png`` (512 x 512, 8-bit gray), unchanged."""
    return shared_file(CHEST_PNG).read_bytes()


@functools.lru_cache(maxsize=1)
def chest_jpeg() -> bytes:
    """``16747_3_1.jpg`` (a chest radiograph JPEG stored as RGB), unchanged."""
    return shared_file(CHEST_JPEG).read_bytes()


@functools.lru_cache(maxsize=1)
def small_png() -> bytes:
    """:func:`chest_png` subsampled to 64 x 64 and re-encoded (small enough for thousands of fuzz reads)."""
    return _reencode(chest_png(), "PNG")


@functools.lru_cache(maxsize=1)
def small_jpeg() -> bytes:
    """:func:`chest_jpeg` subsampled to about 65 x 56, re-encoded as an RGB baseline JPEG."""
    return _reencode(chest_jpeg(), "JPEG")


def _small_pixels() -> np.ndarray:
    """The 64 x 64 NIH pixels of :func:`small_png`, cropped to 64 x 48 (non-square)."""
    from PIL import Image

    with Image.open(io.BytesIO(small_png())) as im:
        return np.ascontiguousarray(np.asarray(im)[:, 8:56])


def volume_bytes(ext: str, pixels: np.ndarray | None = None, *, compress: bool = False,
                 spacing: tuple[float, ...] | None = None) -> dict[str, bytes]:
    """``pixels`` (default :func:`_small_pixels`) written by SimpleITK (``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``)
    or nibabel (``.nii``, ``.nii.gz``, ``.hdr``) in the library's own axis convention; returns every file written
    (``{"x.mhd": ..., "x.raw": ...}``), the header first. Vector pixels: a trailing axis of 2 to 4."""
    import tempfile

    v = _small_pixels() if pixels is None else pixels
    with tempfile.TemporaryDirectory(prefix="mcolor-corpus-") as folder:
        path = Path(folder) / f"x{ext}"
        if ext in (".nii", ".nii.gz", ".hdr"):
            import nibabel

            klass = nibabel.Nifti1Pair if ext == ".hdr" else nibabel.Nifti1Image
            spatial = 2 if v.ndim == 2 else v.ndim
            nibabel.save(klass(np.asfortranarray(v.transpose(tuple(reversed(range(spatial))))), np.eye(4)), str(path))
        else:
            import SimpleITK as sitk

            image = sitk.GetImageFromArray(v, isVector=v.ndim == 3 and v.shape[-1] <= 4)
            if spacing is not None:
                image.SetSpacing(spacing)
            sitk.WriteImage(image, str(path), useCompression=compress)
        files = sorted(Path(folder).iterdir(), key=lambda f: f.name != path.name)
        return {f.name: f.read_bytes() for f in files}


@functools.lru_cache(maxsize=8)
def small_volume(ext: str) -> bytes:
    """:func:`_small_pixels` as one single-file volume-format file (``.mha``, ``.nrrd``, ``.nii``, ``.nii.gz``)."""
    return volume_bytes(ext)[f"x{ext}"]


def _reencode(raw: bytes, fmt: str) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as im:
        arr = np.asarray(im)
    small = Image.fromarray(np.ascontiguousarray(arr[::8, ::8] if fmt == "PNG" else arr[::16, ::16]))
    buf = io.BytesIO()
    small.save(buf, fmt)
    return buf.getvalue()


# --- DICOM byte surgery -------------------------------------------------------------------------------


def meta_end(raw: bytes) -> int:
    """Offset of the first byte after the file meta group (preamble 128 + ``DICM`` + group 0002)."""
    if raw[132:136] != b"\x02\x00\x00\x00" or raw[136:138] != b"UL":
        raise ValueError("no (0002,0000) group length right after DICM")
    (group_length,) = struct.unpack("<I", raw[140:144])
    return 144 + group_length


def pixel_data_offset(raw: bytes) -> int:
    """Offset of the (7FE0,0010) Pixel Data element (Explicit VR: tag, OB/OW, 2 reserved, 4-byte length)."""
    for vr in (b"OW", b"OB"):
        pos = raw.rfind(PIXEL_DATA_TAG + vr + b"\x00\x00")
        if pos > 0:
            return pos
    raise ValueError("no Pixel Data element")


def find_element(raw: bytes, group: int, element: int, vr: bytes) -> int:
    """Offset of the first Explicit VR Little Endian element ``(group,element)`` with ``vr`` in the data set."""
    pos = raw.find(struct.pack("<HH", group, element) + vr, 132)
    if pos < 0:
        raise ValueError(f"({group:04X},{element:04X}) {vr!r} not found")
    return pos


def set_short_length(raw: bytes, offset: int, length: int) -> bytes:
    """Overwrite the 2-byte length of the short-form Explicit VR element at ``offset``."""
    return raw[: offset + 6] + struct.pack("<H", length) + raw[offset + 8 :]


def set_long_length(raw: bytes, offset: int, length: int) -> bytes:
    """Overwrite the 4-byte length of the long-form (OB/OW/SQ/UN...) Explicit VR element at ``offset``."""
    return raw[: offset + 8] + struct.pack("<I", length) + raw[offset + 12 :]


def edit_dicom(raw: bytes, *, meta: dict[str, object] | None = None, delete: tuple[str, ...] = (),
               **values: object) -> bytes:
    """Re-save ``raw`` after setting data-set ``values`` / file-meta ``meta`` (by keyword) and deleting ``delete``."""
    ds = _read(raw)
    for keyword in delete:
        delattr(ds, keyword)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    for keyword, value in (meta or {}).items():
        setattr(ds.file_meta, keyword, value)  # type: ignore[attr-defined]
    return dataset_bytes(ds)


def with_transfer_syntax(raw: bytes, uid: bytes) -> bytes:
    """Replace the (0002,0010) value in place (any length, even), fixing the group length; pydicom refuses to
    write a syntax it does not know, so this is byte surgery."""
    pos = raw.find(b"\x02\x00\x10\x00UI", 132)
    (old_len,) = struct.unpack("<H", raw[pos + 6 : pos + 8])
    value = uid + (b"\x00" if len(uid) % 2 else b"")
    out = raw[:pos] + b"\x02\x00\x10\x00UI" + struct.pack("<H", len(value)) + value + raw[pos + 8 + old_len :]
    (group_length,) = struct.unpack("<I", out[140:144])
    return out[:140] + struct.pack("<I", group_length + len(value) - old_len) + out[144:]


def first_fragment(raw: bytes) -> int:
    """Offset of the first data fragment item (after the Basic Offset Table item) of encapsulated Pixel Data."""
    pix = pixel_data_offset(raw)
    bot = pix + 12
    if raw[bot : bot + 4] != b"\xfe\xff\x00\xe0":
        raise ValueError("no Basic Offset Table item")
    (bot_len,) = struct.unpack("<I", raw[bot + 4 : bot + 8])
    return bot + 8 + bot_len


def nested_sequences(depth: int) -> bytes:
    """``depth`` Referenced Series Sequences, each in the single item of the one above (undefined lengths)."""
    seq_open = struct.pack("<HH", 0x0008, 0x1115) + b"SQ\x00\x00\xff\xff\xff\xff"
    item_open = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    item_close = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    seq_close = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return (seq_open + item_open) * depth + (item_close + seq_close) * depth


# --- PNG / JPEG byte surgery --------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk; its CRC is computed unless ``crc`` is given."""
    value = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", value & 0xFFFFFFFF)


def png_chunks(raw: bytes) -> list[tuple[int, bytes, bytes]]:
    """``(offset, kind, data)`` of every chunk of a well-formed PNG."""
    pos, out = 8, []
    while pos + 8 <= len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        out.append((pos, raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def png_replace(raw: bytes, kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """``raw`` with the first ``kind`` chunk's data replaced (valid CRC unless ``crc`` is given)."""
    for pos, k, old in png_chunks(raw):
        if k == kind:
            return raw[:pos] + png_chunk(kind, data, crc) + raw[pos + 12 + len(old) :]
    raise ValueError(f"no {kind!r} chunk")


def png_ihdr(raw: bytes, **fields: int) -> bytes:
    """``raw`` with IHDR fields (width, height, bit_depth, color_type, interlace) changed, CRC recomputed."""
    ihdr = next(d for _, k, d in png_chunks(raw) if k == b"IHDR")
    names = ("width", "height", "bit_depth", "color_type", "compression", "filter", "interlace")
    values = dict(zip(names, struct.unpack(">IIBBBBB", ihdr), strict=True))
    values.update(fields)
    return png_replace(raw, b"IHDR", struct.pack(">IIBBBBB", *(values[n] for n in names)))


def png_offset(raw: bytes, kind: bytes) -> int:
    """Offset of the first ``kind`` chunk (its length field)."""
    return next(pos for pos, k, _ in png_chunks(raw) if k == kind)


def apng(raw: bytes) -> bytes:
    """A 2-frame animated PNG made from the image of ``raw``."""
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as im:
        first = im.convert("L")
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    first.save(buf, "PNG", save_all=True, append_images=[second])
    return buf.getvalue()


def jpeg_sof(raw: bytes) -> int:
    """Offset of the first start-of-frame marker (SOF0..SOF2) of a JPEG."""
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        pos = raw.find(marker, 2)
        if pos > 0:
            return pos
    raise ValueError("no SOF marker")


def jpeg_dims(raw: bytes, height: int, width: int) -> bytes:
    """``raw`` with the frame header's height and width replaced."""
    sof = jpeg_sof(raw)
    return raw[: sof + 5] + struct.pack(">HH", height, width) + raw[sof + 9 :]


def jpeg_scan(raw: bytes) -> int:
    """Offset of the first byte of entropy-coded data (after the SOS header)."""
    sos = raw.find(b"\xff\xda")
    (length,) = struct.unpack(">H", raw[sos + 2 : sos + 4])
    return sos + 2 + length


def garble(raw: bytes, start: int, stop: int, seed: int = 0) -> bytes:
    """``raw`` with bytes ``[start, stop)`` replaced by seeded random bytes (no 0xFF, so markers stay put)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, stop - start, dtype=np.uint8).tobytes()
    return raw[:start] + noise + raw[stop:]


def j2k_siz(raw: bytes, height: int, width: int) -> bytes:
    """Encapsulated JPEG 2000 whose codestream SIZ marker claims ``width`` x ``height`` (DICOM header intact)."""
    siz = raw.find(b"\xff\x4f\xff\x51", first_fragment(raw)) + 2
    return raw[: siz + 6] + struct.pack(">II", width, height) + raw[siz + 14 :]


# --- the corpus --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One malformed input.

    Attributes:
        name: file name inside the corpus folder (also the pytest id).
        reason: the ``RadiographReadError.reason`` expected, or ``None``: must read to a valid image.
        build: ``build(path)`` creates the file (or folder, link, FIFO) at ``path``.
        what: one line for the case table in ``docs/fuzzing.md``.
        bomb: declares dimensions whose decode would need gigabytes (checked under RLIMIT_AS too).
    """

    name: str
    reason: str | None
    build: Callable[[Path], None]
    what: str
    bomb: bool = False


def _bytes(make: Callable[[], bytes]) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        path.write_bytes(make())

    return build


def _mkdir(path: Path) -> None:
    path.mkdir()


def _link_loop(path: Path) -> None:
    other = path.with_name(path.name + ".other")
    os.symlink(other.name, path)
    os.symlink(path.name, other)


def _link_to_parent(path: Path) -> None:
    os.symlink("..", path)


def _dangling_link(path: Path) -> None:
    os.symlink("does-not-exist.dcm", path)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _mid(a: int, b: int) -> int:
    return (a + b) // 2


def _dicom_cases() -> list[Case]:
    native, j2k = rg1_native, rg1_j2k

    def rgb() -> bytes:
        ds = _read(native())
        arr = ds.pixel_array  # type: ignore[attr-defined]
        rgb8 = np.repeat((arr >> 4).astype(np.uint8)[..., None], 3, axis=-1)
        return edit_dicom(native(), SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0,
                          BitsAllocated=8, BitsStored=8, HighBit=7, PixelData=rgb8.tobytes())

    def float_pixels() -> bytes:
        ds = _read(native())
        arr = ds.pixel_array.astype(np.float32)  # type: ignore[attr-defined]
        del ds.PixelData  # type: ignore[attr-defined]
        ds.FloatPixelData = arr.tobytes()  # type: ignore[attr-defined]
        for keyword in ("BitsStored", "HighBit", "PixelRepresentation"):
            delattr(ds, keyword)
        ds.BitsAllocated = 32  # type: ignore[attr-defined]
        return dataset_bytes(ds)

    def charset(name: str) -> Callable[[], bytes]:
        def make() -> bytes:
            # a Latin-1 byte (0xE9) where the declared character set cannot decode it
            raw = edit_dicom(native(), SpecificCharacterSet=name, PatientName="Corpus^Planted^NamX")
            return raw.replace(b"Corpus^Planted^NamX", b"Corpus^Planted^Nam\xe9")

        return make

    def nested() -> bytes:
        raw = native()
        end = meta_end(raw)
        return raw[:end] + nested_sequences(3000) + raw[end:]

    def length_overrun() -> bytes:
        raw = native()
        return set_short_length(raw, find_element(raw, 0x0008, 0x0060, b"CS"), 0xFFF0)

    def length_short() -> bytes:
        raw = native()
        pos = find_element(raw, 0x0010, 0x0010, b"PN")
        (length,) = struct.unpack("<H", raw[pos + 6 : pos + 8])
        return set_short_length(raw, pos, length - 3)

    def rows_vr_mismatch() -> bytes:
        raw = native()
        pos = find_element(raw, 0x0028, 0x0010, b"US")
        return raw[:pos + 6] + struct.pack("<HI", 4, 0x00010001) + raw[pos + 10 :]  # Rows US with 2 values

    def private_huge() -> bytes:
        raw = native()
        pix = pixel_data_offset(raw)
        elem = struct.pack("<HH", 0x0029, 0x1010) + b"OB\x00\x00" + struct.pack("<I", 0xFFFFFFF0) + b"\x00" * 64
        return raw[:pix] + elem + raw[pix:]

    def group_length_wrong() -> bytes:
        raw = native()
        return raw[:140] + struct.pack("<I", 0x7FFFFFF0) + raw[144:]

    def item_tag_broken() -> bytes:
        raw = j2k()
        frag = first_fragment(raw)
        return raw[:frag] + b"\x34\x12\x78\x56" + raw[frag + 4 :]

    def fragment_overrun() -> bytes:
        raw = j2k()
        frag = first_fragment(raw)
        return raw[: frag + 4] + struct.pack("<I", 0x7FFFFFF0) + raw[frag + 8 :]

    def fragment_garbage() -> bytes:
        raw = j2k()
        frag = first_fragment(raw) + 8
        return garble(raw, frag + 2, len(raw) - 16)  # keep the SOC marker, noise up to the delimiter

    def bot_bogus() -> bytes:
        raw = j2k()
        bot = pixel_data_offset(raw) + 12  # one frame: its offset must be 0; claim 0x7FFFFFF0
        return raw[:bot] + b"\xfe\xff\x00\xe0" + struct.pack("<II", 4, 0x7FFFFFF0) + raw[first_fragment(raw) :]

    def frames_garbage() -> bytes:
        raw = edit_dicom(native(), NumberOfFrames="7")
        pos = find_element(raw, 0x0028, 0x0008, b"IS")
        return raw[: pos + 8] + b"ab" + raw[pos + 10 :]  # IS value '7 ' -> 'ab'

    def siim_tables_garbage(raw: bytes) -> bytes:
        jpeg = first_fragment(raw) + 8  # SOI of the JPEG codestream
        dht, sos = raw.find(b"\xff\xc4", jpeg), raw.find(b"\xff\xda", jpeg)
        return garble(raw, dht + 4, sos)  # Huffman tables replaced by noise

    def no_delimiter() -> bytes:
        raw = j2k()
        assert raw[-8:] == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        return raw[:-8]

    def truncated_meta() -> bytes:
        raw = native()
        return raw[: _mid(144, meta_end(raw))]

    def truncated_dataset() -> bytes:
        raw = native()
        return raw[: _mid(meta_end(raw), pixel_data_offset(raw))]

    def truncated_pixel_header() -> bytes:
        raw = native()
        return raw[: pixel_data_offset(raw) + 6]

    def truncated_pixels() -> bytes:
        raw = native()
        return raw[: _mid(pixel_data_offset(raw) + 12, len(raw))]

    def truncated_fragment() -> bytes:
        raw = j2k()
        return raw[: _mid(first_fragment(raw) + 8, len(raw))]

    def bare_truncated() -> bytes:
        raw = native()
        return raw[meta_end(raw) : _mid(meta_end(raw), pixel_data_offset(raw))]

    def siim(make: Callable[[bytes], bytes]) -> Callable[[], bytes]:
        return lambda: make(shared_file(SIIM_JPEG).read_bytes())

    return [
        Case("dcm_trunc_preamble.dcm", "not_an_image", _bytes(lambda: native()[:64]),
             "RG1 cut inside the 128-byte preamble"),
        Case("dcm_trunc_dicm.dcm", "not_an_image", _bytes(lambda: native()[:130]),
             "RG1 cut inside the DICM prefix"),
        Case("dcm_trunc_meta.dcm", "no_pixel_data", _bytes(truncated_meta),
             "RG1 cut in the middle of the file meta group"),
        Case("dcm_trunc_after_meta.dcm", "no_pixel_data", _bytes(lambda: native()[: meta_end(native())]),
             "RG1 cut right after the file meta group (no data set)"),
        Case("dcm_trunc_dataset.dcm", "decode_failed", _bytes(truncated_dataset),
             "RG1 cut in the middle of the data set, before Pixel Data"),
        Case("dcm_trunc_pixel_header.dcm", "truncated_pixel_data", _bytes(truncated_pixel_header),
             "RG1 cut inside the Pixel Data element header"),
        Case("dcm_trunc_pixels.dcm", "truncated_pixel_data", _bytes(truncated_pixels),
             "RG1 cut halfway through native Pixel Data"),
        Case("dcm_trunc_last_byte.dcm", "truncated_pixel_data", _bytes(lambda: native()[:-1]),
             "RG1 missing its last byte"),
        Case("dcm_trunc_fragment.dcm", "truncated_pixel_data", _bytes(truncated_fragment),
             "RG1 JPEG 2000 cut inside the compressed fragment"),
        Case("dcm_no_delimiter.dcm", "truncated_pixel_data", _bytes(no_delimiter),
             "RG1 JPEG 2000, complete fragment but no sequence delimiter"),
        Case("dcm_bare_trunc.dcm", "decode_failed", _bytes(bare_truncated),
             "RG1 data set without preamble/meta, cut before Pixel Data"),
        Case("dcm_siim_trunc.dcm", "truncated_pixel_data", _bytes(siim(lambda r: r[: len(r) - 5000])),
             "SIIM JPEG Baseline CR missing its last 5000 bytes"),
        Case("dcm_vr_length_overrun.dcm", "truncated_pixel_data", _bytes(length_overrun),
             "Modality (CS) length 0xFFF0: the value swallows the rest of the file, Pixel Data included"),
        Case("dcm_vr_length_short.dcm", "truncated_pixel_data", _bytes(length_short),
             "PatientName length 3 bytes short: every later element misaligned, Pixel Data lost"),
        Case("dcm_rows_two_values.dcm", "no_pixel_data", _bytes(rows_vr_mismatch),
             "Rows (US) with length 4: two values"),
        Case("dcm_private_huge_length.dcm", "truncated_pixel_data", _bytes(private_huge),
             "private OB element declaring 4 GiB right before Pixel Data"),
        Case("dcm_group_length_huge.dcm", None, _bytes(group_length_wrong),
             "file meta group length 0x7FFFFFF0 (pydicom reads by tag group): still reads"),
        Case("dcm_pixel_length_huge.dcm", "truncated_pixel_data",
             _bytes(lambda: set_long_length(native(), pixel_data_offset(native()), 0x7FFFFFF0)),
             "Pixel Data length 0x7FFFFFF0 (2 GiB) in a 30 kB file: refused before any read", bomb=True),
        Case("dcm_rows_double.dcm", "truncated_pixel_data", _bytes(lambda: edit_dicom(native(), Rows=246)),
             "Rows doubled: half the native pixel bytes present"),
        Case("dcm_no_pixel_data.dcm", "no_pixel_data", _bytes(lambda: edit_dicom(native(), delete=("PixelData",))),
             "RG1 with Pixel Data deleted"),
        Case("dcm_rows_zero.dcm", "no_pixel_data", _bytes(lambda: edit_dicom(native(), Rows=0)), "Rows = 0"),
        Case("dcm_columns_zero.dcm", "no_pixel_data", _bytes(lambda: edit_dicom(native(), Columns=0)),
             "Columns = 0"),
        Case("dcm_bits_stored_gt_allocated.dcm", "decode_failed",
             _bytes(lambda: edit_dicom(native(), BitsStored=24, HighBit=23)), "BitsStored 24 > BitsAllocated 16"),
        Case("dcm_bits_allocated_zero.dcm", "decode_failed", _bytes(lambda: edit_dicom(native(), BitsAllocated=0)),
             "BitsAllocated = 0"),
        Case("dcm_ts_unknown.dcm", "unsupported_transfer_syntax",
             _bytes(lambda: with_transfer_syntax(native(), b"1.2.826.0.1.3680043.10.1234")),
             "a private, unknown transfer syntax UID"),
        Case("dcm_ts_not_a_uid.dcm", "unsupported_transfer_syntax",
             _bytes(lambda: with_transfer_syntax(native(), b"JPEG-please")), "transfer syntax 'JPEG-please'"),
        Case("dcm_ts_native_as_jpeg.dcm", "decode_failed",
             _bytes(lambda: with_transfer_syntax(native(), b"1.2.840.10008.1.2.4.50")),
             "native pixels declared JPEG Baseline (no encapsulation)"),
        Case("dcm_encaps_item_tag.dcm", "decode_failed", _bytes(item_tag_broken),
             "JPEG 2000 fragment whose item tag is (1234,5678)"),
        Case("dcm_encaps_fragment_overrun.dcm", None, _bytes(fragment_overrun),
             "JPEG 2000 fragment length 0x7FFFFFF0 past the end, codestream complete: still reads"),
        Case("dcm_encaps_fragment_garbage.dcm", "decode_failed", _bytes(fragment_garbage),
             "JPEG 2000 fragment: SOC marker then noise"),
        Case("dcm_encaps_bot_bogus.dcm", None, _bytes(bot_bogus),
             "Basic Offset Table entry 0x7FFFFFF0 (single frame: ignored): still reads"),
        Case("dcm_siim_scan_garbage.dcm", None, _bytes(siim(lambda r: garble(r, len(r) // 2, len(r) - 200))),
             "SIIM JPEG Baseline, second half of the scan noise: libjpeg decodes noise pixels (valid image)"),
        Case("dcm_siim_tables_garbage.dcm", "decode_failed", _bytes(siim(siim_tables_garbage)),
             "SIIM JPEG Baseline with its Huffman tables replaced by noise"),
        Case("dcm_bomb_native.dcm", "too_large", _bytes(lambda: edit_dicom(native(), Rows=65535, Columns=65535)),
             "RG1 native header declaring 65535 x 65535", bomb=True),
        Case("dcm_bomb_j2k_header.dcm", "too_large", _bytes(lambda: edit_dicom(j2k(), Rows=65535, Columns=65535)),
             "RG1 JPEG 2000, DICOM header declaring 65535 x 65535", bomb=True),
        Case("dcm_bomb_j2k_codestream.dcm", "decode_failed", _bytes(lambda: j2k_siz(j2k(), 65535, 65535)),
             "RG1 JPEG 2000, header 123 x 116 but the codestream SIZ claims 65535 x 65535", bomb=True),
        Case("dcm_sop_sr.dcm", "non_image_sop",
             _bytes(lambda: edit_dicom(native(), SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11",
                                       meta={"MediaStorageSOPClassUID": "1.2.840.10008.5.1.4.1.1.88.11"})),
             "RG1 pixels under a Basic Text SR SOP class"),
        Case("dcm_rgb.dcm", "unsupported_photometric", _bytes(rgb), "RG1 pixels stored as RGB, 3 samples"),
        Case("dcm_palette.dcm", "unsupported_photometric",
             _bytes(lambda: edit_dicom(native(), PhotometricInterpretation="PALETTE COLOR")), "PALETTE COLOR"),
        Case("dcm_ybr_one_sample.dcm", "unsupported_photometric",
             _bytes(lambda: edit_dicom(native(), PhotometricInterpretation="YBR_FULL")),
             "YBR_FULL with SamplesPerPixel 1"),
        Case("dcm_multi_frame.dcm", "multi_frame", _bytes(lambda: pydicom_file("emri_small.dcm").read_bytes()),
             "pydicom-data emri_small.dcm: 10-frame MR"),
        Case("dcm_frames_garbage.dcm", "decode_failed", _bytes(frames_garbage),
             "NumberOfFrames 'ab' (not an IS value)"),
        Case("dcm_float_pixels.dcm", "no_pixel_data", _bytes(float_pixels),
             "RG1 pixels as Float Pixel Data (parametric-map style)"),
        Case("dcm_charset_mismatch.dcm", None, _bytes(charset("ISO_IR 192")),
             "SpecificCharacterSet UTF-8, PatientName bytes not UTF-8: still reads"),
        Case("dcm_charset_unknown.dcm", None, _bytes(charset("ISO_IR 999")),
             "unknown SpecificCharacterSet 'ISO_IR 999' with non-ASCII text: still reads"),
        Case("dcm_nested_sequences.dcm", "decode_failed", _bytes(nested),
             "3000 nested sequences of undefined length (parser recursion)"),
        Case("dcm_dicm_then_noise.dcm", "no_pixel_data",
             _bytes(lambda: native()[:132] + garble(b"\x00" * 4000, 0, 4000, seed=3)),
             "preamble and DICM, then 4000 random bytes"),
    ]


def _raster_cases() -> list[Case]:
    png, jpg = chest_png, chest_jpeg

    def idat_garbage() -> bytes:
        raw = png()
        idat = next(d for _, k, d in png_chunks(raw) if k == b"IDAT")
        return png_replace(raw, b"IDAT", garble(idat, 2, len(idat)))

    return [
        Case("png_empty.png", "empty_file", _bytes(lambda: b""), "zero bytes"),
        Case("png_trunc_signature.png", "not_an_image", _bytes(lambda: png()[:4]), "first 4 bytes of the signature"),
        Case("png_trunc_ihdr.png", "decode_failed", _bytes(lambda: png()[:20]), "cut inside IHDR"),
        Case("png_trunc_after_ihdr.png", "not_an_image", _bytes(lambda: png()[:33]),
             "signature and IHDR only"),
        Case("png_trunc_idat.png", "truncated_pixel_data",
             _bytes(lambda: png()[: png_offset(png(), b"IDAT") + 1000]), "cut 1000 bytes into the first IDAT"),
        Case("png_no_iend.png", None, _bytes(lambda: png()[: png_offset(png(), b"IEND")]),
             "complete image data, IEND chunk missing: still reads"),
        Case("png_ihdr_bad_crc.png", "not_an_image",
             _bytes(lambda: png_replace(png(), b"IHDR", next(d for _, k, d in png_chunks(png()) if k == b"IHDR"),
                                        crc=0)), "IHDR CRC zeroed"),
        Case("png_zero_width.png", "not_an_image", _bytes(lambda: png_ihdr(png(), width=0)),
             "IHDR width 0 (valid CRC)"),
        Case("png_bad_bit_depth.png", "not_an_image", _bytes(lambda: png_ihdr(png(), bit_depth=3)),
             "IHDR bit depth 3 for gray (valid CRC)"),
        Case("png_idat_garbage.png", "decode_failed", _bytes(idat_garbage), "IDAT zlib stream noise, valid CRC"),
        Case("png_bomb.png", "too_large", _bytes(lambda: png_ihdr(png(), width=65535, height=65535)),
             "real PNG, IHDR claims 65535 x 65535 (valid CRC)", bomb=True),
        Case("png_bomb_under_pillow.png", "too_large", _bytes(lambda: png_ihdr(png(), width=9000, height=9000)),
             "real PNG, IHDR claims 9000 x 9000: above max_pixels, below Pillow's hard limit", bomb=True),
        Case("png_apng.png", "multi_frame", _bytes(lambda: apng(png())), "2-frame animated PNG"),
        Case("jpg_trunc_soi.jpg", "not_an_image", _bytes(lambda: jpg()[:3]), "SOI marker only"),
        Case("jpg_trunc_header.jpg", "decode_failed", _bytes(lambda: jpg()[: jpeg_sof(jpg()) - 10]),
             "cut before the frame header"),
        Case("jpg_trunc_scan.jpg", "truncated_pixel_data", _bytes(lambda: jpg()[: len(jpg()) // 2]),
             "cut halfway through the scan"),
        Case("jpg_scan_garbage.jpg", None, _bytes(lambda: garble(jpg(), jpeg_scan(jpg()), len(jpg()) - 2)),
             "entropy-coded data replaced by noise: libjpeg decodes garbage pixels (a valid image)"),
        Case("jpg_bomb.jpg", "too_large", _bytes(lambda: jpeg_dims(jpg(), 65535, 65535)),
             "real JPEG, frame header claims 65535 x 65535", bomb=True),
        Case("jpg_zero_height.jpg", "not_an_image", _bytes(lambda: jpeg_dims(jpg(), 0, 885)),
             "frame header height 0"),
    ]


def _files(ext: str, edit: Callable[[dict[str, bytes]], dict[str, bytes]] | None = None,
           **kwargs: object) -> Callable[[Path], None]:
    """Build a volume-format case: the header at ``path``, its data file (if any) beside it, then ``edit``."""

    def build(path: Path) -> None:
        files = volume_bytes(ext, **kwargs)  # type: ignore[arg-type]
        header = next(iter(files))
        files = edit(files) if edit else files
        for name, data in files.items():
            if name == header:
                path.write_bytes(data)
            elif data is not None:  # a detached data file, renamed to what the header points at
                target = path.with_name(path.name.split(".")[0] + name[1:])  # x.raw -> <case>.raw
                target.write_bytes(data)
                if name.endswith(".raw"):  # MetaImage / NRRD headers name their data file
                    path.write_bytes(path.read_bytes().replace(name.encode(), target.name.encode()))

    return build


def _cut(fraction: float, name: str | None = None) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def edit(files: dict[str, bytes]) -> dict[str, bytes]:
        key = name or next(iter(files))
        return {**files, key: files[key][: int(len(files[key]) * fraction)]}

    return edit


def _replace(old: bytes, new: bytes) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def edit(files: dict[str, bytes]) -> dict[str, bytes]:
        key = next(iter(files))
        assert old in files[key], old
        return {**files, key: files[key].replace(old, new, 1)}

    return edit


def _drop(name: str) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    return lambda files: {k: (None if k == name else v) for k, v in files.items()}  # type: ignore[misc]


def _nifti_header(offset: int, fmt: str, *values: float) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def edit(files: dict[str, bytes]) -> dict[str, bytes]:
        key = next(iter(files))
        raw = bytearray(files[key])
        raw[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, *values)
        return {**files, key: bytes(raw)}

    return edit


def _gzip_files(files: dict[str, bytes]) -> dict[str, bytes]:
    import gzip

    key = next(iter(files))
    return {key: gzip.compress(files[key], mtime=0)}


def _volume_cases() -> list[Case]:
    stack = lambda: np.stack([_small_pixels(), _small_pixels()[::-1]])  # noqa: E731
    vector2 = lambda: np.stack([_small_pixels(), _small_pixels()[::-1]], axis=-1)  # noqa: E731
    nan_image = lambda: np.where(_small_pixels() > 128, np.nan, 1.0).astype(np.float32)  # noqa: E731

    def lazy(make: Callable[[], np.ndarray], ext: str, edit: Callable | None = None, **kw: object):
        return lambda path: _files(ext, edit, pixels=make(), **kw)(path)

    return [
        Case("mha_trunc_data.mha", "truncated_pixel_data", _files(".mha", _cut(0.6)),
             "MetaImage cut in the pixel data"),
        Case("mha_zlib_trunc.mha", "truncated_pixel_data", _files(".mha", _cut(0.7), compress=True),
             "zlib-compressed MetaImage shorter than its CompressedDataSize"),
        Case("mha_raw_short.mhd", "truncated_pixel_data", _files(".mhd", _cut(0.5, "x.raw")),
             "MetaImage header + .raw file holding half the pixels"),
        Case("mha_raw_missing.mhd", "no_pixel_data", _files(".mhd", _drop("x.raw")),
             "MetaImage header whose ElementDataFile does not exist"),
        Case("mha_header_garbage.mha", "decode_failed", _files(".mha", _replace(b"NDims = 2", b"NDims = two")),
             "MetaImage NDims not a number"),
        Case("mha_no_datafile_line.mha", "decode_failed",
             _files(".mha", _replace(b"ElementDataFile = LOCAL", b"ElementDataFilm = LOCAL")),
             "MetaImage header without its ElementDataFile line"),
        Case("mha_volume.mha", "multi_frame", lazy(stack, ".mha", spacing=(1.0, 1.0, 1.0)), "2-slice MetaImage volume"),
        Case("mha_vector2.mha", "unsupported_photometric", lazy(vector2, ".mha"),
             "2-component vector pixels that differ"),
        Case("mha_nan.mha", "decode_failed", lazy(nan_image, ".mha"), "float MetaImage holding NaN"),
        Case("mha_bomb.mha", "too_large", _files(".mha", _replace(b"DimSize = 48 64", b"DimSize = 65535 65535")),
             "MetaImage header claiming 65535 x 65535 over 3 kB of data", bomb=True),
        Case("nrrd_trunc_data.nrrd", "truncated_pixel_data", _files(".nrrd", _cut(0.6)), "NRRD cut in the raw data"),
        Case("nrrd_gzip_trunc.nrrd", "truncated_pixel_data", _files(".nrrd", _cut(0.7), compress=True),
             "gzip-encoded NRRD cut in the stream (SimpleITK's own message)"),
        Case("nrrd_raw_missing.nhdr", "no_pixel_data", _files(".nhdr", _drop("x.raw")),
             "detached NRRD header whose data file does not exist"),
        Case("nrrd_bad_type.nrrd", "decode_failed", _files(".nrrd", _replace(b"type: unsigned char", b"type: banana")),
             "NRRD type field not a type"),
        Case("nrrd_volume.nrrd", "multi_frame", lazy(stack, ".nrrd", spacing=(1.0, 1.0, 1.0)), "2-slice NRRD volume"),
        Case("nrrd_bomb.nrrd", "too_large", _files(".nrrd", _replace(b"sizes: 48 64", b"sizes: 65535 65535")),
             "NRRD header claiming 65535 x 65535", bomb=True),
        Case("nii_trunc_data.nii", "truncated_pixel_data", _files(".nii", _cut(0.8)), "NIfTI-1 cut in the voxels"),
        Case("nii_gz_trunc.nii.gz", "truncated_pixel_data", _files(".nii.gz", _cut(0.8)),
             "gzipped NIfTI-1 cut inside the stream"),
        Case("nii_img_missing.hdr", "no_pixel_data", _files(".hdr", _drop("x.img")),
             "NIfTI-1 pair header (ni1) without its .img"),
        Case("nii_bad_datatype.nii", "decode_failed", _files(".nii", _nifti_header(70, "<h", 9999)),
             "NIfTI-1 datatype code 9999"),
        Case("nii_time_series.nii", "multi_frame", lazy(lambda: np.stack([_small_pixels()] * 3)[:, None], ".nii"),
             "NIfTI-1 time series: 48 x 64 x 1 x 3"),
        Case("nii_bomb.nii", "too_large", _files(".nii", _nifti_header(42, "<2h", 30000, 30000)),
             "NIfTI-1 header claiming 30000 x 30000", bomb=True),
        Case("nii_gz_bomb.nii.gz", "too_large",
             lambda path: _files(".nii", lambda f: _gzip_files(_nifti_header(42, "<2h", 30000, 30000)(f)))(path),
             "gzipped NIfTI-1 header claiming 30000 x 30000 (only the header is inflated)", bomb=True),
        Case("nii_gz_not_nifti.nii.gz", "not_an_image",
             _bytes(lambda: __import__("gzip").compress(b"plain text, not a NIfTI header\n" * 40, mtime=0)),
             "a gzip file whose content is not NIfTI"),
    ]


def _fs_cases() -> list[Case]:
    return [
        Case("x.dcm", "not_a_file", _mkdir, "a directory named x.dcm"),
        Case("empty.dcm", "empty_file", _bytes(lambda: b""), "zero-byte .dcm"),
        Case("loop.dcm", "unreadable_file", _link_loop, "symbolic link loop: loop.dcm -> loop.dcm.other -> loop.dcm"),
        Case("parent_link", "not_a_file", _link_to_parent, "symbolic link to its own folder (a tree loop)"),
        Case("dangling.dcm", "not_a_file", _dangling_link, "symbolic link to nothing"),
        Case("fifo.dcm", "not_a_file", _fifo, "a FIFO (reading would block forever)"),
    ]


def all_cases() -> list[Case]:
    """Every case of the corpus (sources are read lazily, when a case is built)."""
    return _dicom_cases() + _raster_cases() + _volume_cases() + _fs_cases()


CASES: list[Case] = all_cases()
