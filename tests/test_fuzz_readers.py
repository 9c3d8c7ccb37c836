"""Property-based fuzzing of the DICOM and PNG/JPEG readers with hypothesis (derandomized: reproducible).

The property: whatever the bytes, :func:`mcolor.io.read_radiograph` returns a valid float32 ``(H, W)`` image
in ``[0, 1]`` with a complete, JSON-serialisable meta, or raises :class:`RadiographReadError` with a documented
reason and the path. Nothing else: no other exception, no hang, no crash of the interpreter.

Inputs are mutations of real files (``tests/corpus.py``): raw byte edits (flips, overwrites, insertions,
deletions, truncations), DICOM edits through pydicom (element deletions, typed values outside their valid
range, then re-saved), DICOM value and length corruption in place, PNG chunk edits with valid CRCs (so the
mutation reaches the decoder rather than the CRC check) and JPEG marker-segment edits. About 1200 reads in
all, well under a minute; ``tests/fuzz_atheris.py`` runs the same property for as long as one likes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from corpus import SourceMissing, png_chunk, png_chunks, rg1_j2k, rg1_native, small_jpeg, small_png, small_volume
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from mcolor.errors import RadiographReadError
from mcolor.io import META_KEYS, READ_ERROR_REASONS, read_radiograph

pytestmark = pytest.mark.filterwarnings("ignore")  # pydicom / Pillow warn about every broken file

#: CI: 200 derandomized examples per test (the same inputs on every run). ``MCOLOR_FUZZ_EXAMPLES=N`` runs N
#: random (not derandomized) examples per test instead: a longer local campaign, see docs/fuzzing.md.
LONG_RUN = int(os.environ.get("MCOLOR_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=LONG_RUN or 200, deadline=timedelta(seconds=5), derandomize=not LONG_RUN,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}


def check_read(path: Path) -> str:
    """Read ``path`` and assert the reader's contract; returns ``"ok"`` or the error reason."""
    try:
        image, meta = read_radiograph(path)
    except RadiographReadError as exc:
        assert exc.reason in READ_ERROR_REASONS, exc.reason
        assert exc.path == str(path) and str(exc).startswith(str(path))
        return exc.reason
    assert isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 2
    assert min(image.shape) >= 1 and image.flags.c_contiguous
    assert np.isfinite(image).all() and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert set(meta) == set(META_KEYS)
    json.dumps(meta)
    return "ok"


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mcolor-fuzz-") as folder:
        yield Path(folder) / "input.bin"


def read_bytes(data: bytes, record: bool = True) -> str:
    with scratch() as path:
        path.write_bytes(data)
        outcome = check_read(path)
    if record:
        event(f"outcome: {outcome}")  # --hypothesis-show-statistics shows the spread of outcomes
    return outcome


SOURCES: dict[str, Callable[[], bytes]] = {
    "dicom_native": rg1_native,
    "dicom_j2k": rg1_j2k,
    "png": small_png,
    "jpeg": small_jpeg,
    "metaimage": lambda: small_volume(".mha"),
    "nrrd": lambda: small_volume(".nrrd"),
    "nifti": lambda: small_volume(".nii"),
    "nifti_gz": lambda: small_volume(".nii.gz"),
}


@pytest.fixture(scope="module")
def sources() -> dict[str, bytes]:
    """The real files the mutations start from; the fuzz tests skip when none is installed."""
    found = {}
    for name, make in SOURCES.items():
        try:
            found[name] = make()
        except SourceMissing:
            continue
    if not found:
        pytest.skip("no real source file (pydicom-data, ../shared) is installed")
    return found


def source(sources: dict[str, bytes], *names: str) -> list[str]:
    present = [n for n in names if n in sources]
    if not present:
        pytest.skip(f"none of {names} is installed")
    return present


def test_every_source_reads_before_mutation(sources: dict[str, bytes]) -> None:
    for data in sources.values():
        assert read_bytes(data, record=False) == "ok"


# --- raw byte mutations -----------------------------------------------------------------------------------

_position = st.floats(0.0, 1.0, exclude_max=True)
_edit = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(1, 255)),
    st.tuples(st.just("set"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), _position, st.integers(1, 256)),
    st.tuples(st.just("truncate"), _position, st.just(0)),
)


def mutate(data: bytes, edits: list[tuple[str, float, object]]) -> bytes:
    """Apply byte edits, each at a relative position of the current data."""
    out = bytearray(data)
    for op, where, arg in edits:
        if not out:
            break
        pos = int(where * len(out))
        if op == "flip":
            out[pos] ^= int(arg)  # type: ignore[call-overload]
        elif op == "set":
            out[pos : pos + len(arg)] = arg  # type: ignore[arg-type]
        elif op == "insert":
            out[pos:pos] = arg  # type: ignore[assignment]
        elif op == "delete":
            del out[pos : pos + int(arg)]  # type: ignore[call-overload]
        else:
            del out[pos:]
    return bytes(out)


@FUZZ
@given(data=st.data(), edits=st.lists(_edit, min_size=1, max_size=6))
@pytest.mark.slow
def test_byte_mutations_of_dicom(sources: dict[str, bytes], data: st.DataObject,
                                 edits: list[tuple[str, float, object]]) -> None:
    name = data.draw(st.sampled_from(source(sources, "dicom_native", "dicom_j2k")))
    read_bytes(mutate(sources[name], edits))


@FUZZ
@given(data=st.data(), edits=st.lists(_edit, min_size=1, max_size=6))
def test_byte_mutations_of_png_and_jpeg(sources: dict[str, bytes], data: st.DataObject,
                                        edits: list[tuple[str, float, object]]) -> None:
    name = data.draw(st.sampled_from(source(sources, "png", "jpeg")))
    read_bytes(mutate(sources[name], edits))


@FUZZ
@given(data=st.data(), edits=st.lists(_edit, min_size=1, max_size=6))
def test_byte_mutations_of_volume_formats(sources: dict[str, bytes], data: st.DataObject,
                                          edits: list[tuple[str, float, object]]) -> None:
    """MetaImage / NRRD (SimpleITK) and NIfTI (nibabel): header text and voxels alike."""
    name = data.draw(st.sampled_from(source(sources, "metaimage", "nrrd", "nifti", "nifti_gz")))
    read_bytes(mutate(sources[name], edits))


_header_line = st.sampled_from([b"NDims = 3", b"DimSize = 65535 65535", b"DimSize = 0 4", b"ElementType = MET_DOUBLE",
                                b"ElementNumberOfChannels = 3", b"CompressedData = True", b"HeaderSize = -1",
                                b"ElementDataFile = LIST", b"ElementDataFile = ../../etc/passwd",
                                b"BinaryData = False", b"sizes: 65535 65535", b"encoding: gzip", b"dimension: 3",
                                b"type: double", b"byte skip: -1", b"data file: nowhere.raw",
                                b"kinds: RGB-color domain"])


@FUZZ
@given(data=st.data())
def test_volume_header_field_edits(sources: dict[str, bytes], data: st.DataObject) -> None:
    """Replace or insert MetaImage / NRRD header lines with plausible but wrong fields."""
    name = data.draw(st.sampled_from(source(sources, "metaimage", "nrrd")))
    raw = sources[name]
    split = raw.index(b"ElementDataFile") if name == "metaimage" else raw.index(b"\n\n")
    lines = raw[:split].split(b"\n")
    for _ in range(data.draw(st.integers(1, 3), label="n edits")):
        i = data.draw(st.integers(1, len(lines) - 1), label="line")
        if data.draw(st.booleans(), label="replace"):
            lines[i] = data.draw(_header_line, label="field")
        else:
            lines.insert(i, data.draw(_header_line, label="field"))
    read_bytes(b"\n".join(lines) + raw[split:])


# --- DICOM: element deletions and typed values through pydicom, then re-saved -----------------------------

_us = st.one_of(st.sampled_from([0, 1, 7, 8, 12, 15, 16, 17, 24, 32, 64, 65535]), st.integers(0, 65535))
_ds = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e308", "0", "-0", "1e-300", "4095"]),
                st.integers(-(2**31), 2**31 - 1).map(str))
_cs = st.one_of(st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "",
                                 "monochrome2", "LINEAR", "LINEAR_EXACT", "SIGMOID", "CR", "SR"]),
                st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=16))
_uid = st.sampled_from(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
                        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                        "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.1.99", "1.2.3"])
VALUES: dict[str, st.SearchStrategy[object]] = {
    "Rows": _us, "Columns": _us, "BitsAllocated": _us, "BitsStored": _us, "HighBit": _us,
    "PixelRepresentation": _us, "SamplesPerPixel": _us, "PlanarConfiguration": _us,
    "NumberOfFrames": st.integers(-3, 2**31 - 1).map(str),
    "PhotometricInterpretation": _cs, "VOILUTFunction": _cs, "Modality": _cs,
    "RescaleSlope": _ds, "RescaleIntercept": _ds, "WindowCenter": _ds, "WindowWidth": _ds,
    "PixelPaddingValue": _us, "PixelPaddingRangeLimit": _us,
    "PixelSpacing": st.lists(_ds, min_size=0, max_size=3),
    "SOPClassUID": st.sampled_from(["1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.88.11", "1.2.3", ""]),
}


@contextlib.contextmanager
def lenient_pydicom() -> Iterator[None]:
    """Let pydicom write out-of-range values (the point of the exercise)."""
    from pydicom import config

    old = config.settings.writing_validation_mode, config.settings.reading_validation_mode
    config.settings.writing_validation_mode = config.settings.reading_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.writing_validation_mode, config.settings.reading_validation_mode = old


def edited(raw: bytes, delete: set[str], values: dict[str, object], syntax: str | None) -> bytes | None:
    """``raw`` re-saved after the edits; None when pydicom itself refuses to write the result."""
    import pydicom

    with lenient_pydicom():
        ds = pydicom.dcmread(io.BytesIO(raw))
        for keyword in delete:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in values.items():
            try:
                setattr(ds, keyword, value)
            except (ValueError, TypeError, OverflowError):
                continue
        if syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        buf = io.BytesIO()
        try:
            ds.save_as(buf, enforce_file_format=False)
        except Exception:  # the harness's problem, not the reader's
            return None
    return buf.getvalue()


@FUZZ
@given(data=st.data())
@pytest.mark.slow
def test_dicom_element_deletions_and_bad_values(sources: dict[str, bytes], data: st.DataObject) -> None:
    import pydicom

    name = data.draw(st.sampled_from(source(sources, "dicom_native", "dicom_j2k")))
    raw = sources[name]
    keywords = sorted(e.keyword for e in pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True) if e.keyword)
    delete = data.draw(st.sets(st.sampled_from(keywords + ["PixelData"]), max_size=4), label="delete")
    chosen = data.draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=4), label="edit")
    values = {k: data.draw(VALUES[k], label=k) for k in sorted(chosen)}
    syntax = data.draw(st.one_of(st.none(), _uid), label="TransferSyntaxUID")
    mutated = edited(raw, delete, values, syntax)
    assume(mutated is not None)
    read_bytes(mutated)  # type: ignore[arg-type]


# --- DICOM: element values and lengths corrupted in place ---------------------------------------------------


def element_spans(raw: bytes) -> list[tuple[int, int, bool]]:
    """``(value offset, value length, long length field)`` of every top-level data-set element."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw), defer_size=1)
    spans = []
    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)
        tell, length = getattr(elem, "value_tell", None), getattr(elem, "length", None)
        if tell is not None and length is not None and length != 0xFFFFFFFF:
            spans.append((tell, length, elem.VR in LONG_VRS))
    return spans


@FUZZ
@given(data=st.data())
@pytest.mark.slow
def test_dicom_values_and_lengths_corrupted_in_place(sources: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(source(sources, "dicom_native", "dicom_j2k")))
    out = bytearray(sources[name])
    spans = element_spans(bytes(out))
    for tell, length, long in data.draw(st.lists(st.sampled_from(spans), min_size=1, max_size=3), label="elems"):
        if data.draw(st.booleans(), label="corrupt length"):
            fmt, size = ("<I", 4) if long else ("<H", 2)
            new = data.draw(st.one_of(st.sampled_from([0, 1, length - 1, length + 1, 2 ** (8 * size) - 1]),
                                      st.integers(0, 2 ** (8 * size) - 1)), label="length")
            out[tell - size : tell] = struct.pack(fmt, new % 2 ** (8 * size))
        elif length:
            value = data.draw(st.binary(min_size=length, max_size=length) if length <= 64 else
                              st.binary(min_size=1, max_size=64), label="value")
            start = tell + data.draw(st.integers(0, max(0, length - len(value))), label="at")
            out[start : start + len(value)] = value
    read_bytes(bytes(out))


# --- PNG chunks (valid CRCs) and JPEG marker segments --------------------------------------------------------

_ihdr_field = st.sampled_from(["width", "height", "bit_depth", "color_type", "compression", "filter", "interlace"])
_dimension = st.one_of(st.integers(0, 2048), st.integers(2**16, 2**31 - 1))


def png_from(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, body) for kind, body in chunks)


@FUZZ
@given(data=st.data())
def test_png_chunk_edits_with_valid_crcs(sources: dict[str, bytes], data: st.DataObject) -> None:
    source(sources, "png")
    chunks = [(kind, body) for _, kind, body in png_chunks(sources["png"])]
    for _ in range(data.draw(st.integers(1, 4), label="n edits")):
        op = data.draw(st.sampled_from(["ihdr", "drop", "duplicate", "swap", "noise", "insert"]), label="op")
        i = data.draw(st.integers(0, len(chunks) - 1), label="chunk") if chunks else 0
        if op == "ihdr" and chunks and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13:
            fields = list(struct.unpack(">IIBBBBB", chunks[0][1]))
            field = ["width", "height", "bit_depth", "color_type", "compression", "filter", "interlace"].index(
                data.draw(_ihdr_field, label="field"))
            fields[field] = data.draw(_dimension if field < 2 else st.integers(0, 255), label="value")
            chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", *fields))
        elif op == "drop" and chunks:
            del chunks[i]
        elif op == "duplicate" and chunks:
            chunks.insert(i, chunks[i])
        elif op == "swap" and len(chunks) > 1:
            j = data.draw(st.integers(0, len(chunks) - 1), label="with")
            chunks[i], chunks[j] = chunks[j], chunks[i]
        elif op == "noise" and chunks and chunks[i][1]:
            body = bytearray(chunks[i][1])
            pos = data.draw(st.integers(0, len(body) - 1), label="at")
            noise = data.draw(st.binary(min_size=1, max_size=32), label="noise")
            body[pos : pos + len(noise)] = noise
            chunks[i] = (chunks[i][0], bytes(body))
        elif op == "insert":
            kind = data.draw(st.sampled_from([b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"acTL", b"fcTL", b"fdAT",
                                              b"iCCP", b"zTXt", b"eXIf", b"sBIT"]), label="kind")
            chunks.insert(i, (kind, data.draw(st.binary(max_size=64), label="body")))
    read_bytes(png_from(chunks))


def jpeg_segments(raw: bytes) -> tuple[list[bytes], bytes]:
    """Marker segments before the scan (each with its marker), then the rest (SOS to EOI)."""
    pos, segments = 2, []
    while pos + 4 <= len(raw) and raw[pos] == 0xFF and raw[pos + 1] != 0xDA:
        (length,) = struct.unpack(">H", raw[pos + 2 : pos + 4])
        segments.append(raw[pos : pos + 2 + length])
        pos += 2 + length
    return segments, raw[pos:]


@FUZZ
@given(data=st.data())
@pytest.mark.slow
def test_jpeg_marker_segment_edits(sources: dict[str, bytes], data: st.DataObject) -> None:
    source(sources, "jpeg")
    segments, scan = jpeg_segments(sources["jpeg"])
    assert segments and scan.startswith(b"\xff\xda")
    for _ in range(data.draw(st.integers(1, 3), label="n edits")):
        i = data.draw(st.integers(0, len(segments) - 1), label="segment")
        op = data.draw(st.sampled_from(["drop", "duplicate", "noise", "dims"]), label="op")
        if op == "drop" and len(segments) > 1:
            del segments[i]
        elif op == "duplicate":
            segments.insert(i, segments[i])
        elif op == "noise" and len(segments[i]) > 4:
            body = bytearray(segments[i])
            pos = data.draw(st.integers(4, len(body) - 1), label="at")
            body[pos] = data.draw(st.integers(0, 255), label="byte")
            segments[i] = bytes(body)
        elif op == "dims":
            sof = next((k for k, s in enumerate(segments) if s[1] in (0xC0, 0xC1, 0xC2)), None)
            if sof is not None:
                h, w = data.draw(_dimension, label="h") & 0xFFFF, data.draw(_dimension, label="w") & 0xFFFF
                s = segments[sof]
                segments[sof] = s[:5] + struct.pack(">HH", h, w) + s[9:]
    read_bytes(b"\xff\xd8" + b"".join(segments) + scan)


# --- the atheris harness stays runnable -----------------------------------------------------------------------


def test_atheris_harness_runs_on_its_seeds(tmp_path: Path, sources: dict[str, bytes]) -> None:
    """``tests/fuzz_atheris.py`` (run by hand, see docs/fuzzing.md): its seeds and its one-input check work
    without atheris installed."""
    import fuzz_atheris

    seeds = fuzz_atheris.write_seeds(tmp_path / "seeds")
    assert len(seeds) >= len(sources)
    for seed in seeds:
        fuzz_atheris.one_input(seed.read_bytes())
    fuzz_atheris.one_input(b"")
    fuzz_atheris.one_input(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
