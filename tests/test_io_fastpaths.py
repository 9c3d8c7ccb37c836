"""The reader's fast paths give the same bits as the straightforward code they replace.

``to_unit_range`` (integer offsets, skipped no-op passes, in-place work), the zero-copy Pillow view,
the channel-equality test on Pillow's RGBX storage, and the DICOM native decode without pydicom's copy.
Speed itself is measured by ``bench/bench_io.py``, never here.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PIL import Image

from mcolor.io import read_radiograph
from mcolor.io.common import to_unit_range
from mcolor.io.dicom import _mask_unused_bits
from mcolor.io.pilview import pixels
from mcolor.io.raster import _channels_equal


def reference_unit_range(x, invert=False, clip_to=None, valid=None):
    """The original implementation: mixed-dtype float32 ufuncs, every pass always taken."""
    stats = x if valid is None else x[valid]
    lo, hi = float(stats.min()), float(stats.max())
    need_clip = False
    if clip_to is not None:
        wlo, whi = clip_to
        need_clip = wlo > lo or whi < hi
        lo, hi = min(max(lo, wlo), whi), max(min(hi, whi), wlo)
    out = np.empty(x.shape, dtype=np.float32)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    span = np.float32(hi32 - lo32)
    if invert:
        np.subtract(hi32, x, out=out, dtype=np.float32)
    else:
        np.subtract(x, lo32, out=out, dtype=np.float32)
    np.divide(out, span, out=out)
    if need_clip:
        np.clip(out, 0.0, 1.0, out=out)
    if valid is not None:
        out[~valid] = 0.0
    return out


def reference_bounds(x, clip_to, valid):
    stats = x if valid is None else x[valid]
    lo, hi = float(stats.min()), float(stats.max())
    if clip_to is not None:
        lo, hi = min(max(lo, clip_to[0]), clip_to[1]), max(min(hi, clip_to[1]), clip_to[0])
    return np.float32(lo), np.float32(hi)


def _arrays():
    rng = np.random.default_rng(0)
    shape = (37, 53)
    yield rng.integers(0, 256, shape).astype(np.uint8)
    yield rng.integers(3, 200, shape).astype(np.uint8)  # lo != 0
    yield np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # 0..255: no subtract, divide by 255
    yield rng.integers(800, 26512, shape).astype(np.uint16)
    yield rng.integers(0, 65536, shape).astype(np.uint16)  # the full 16-bit range
    yield rng.integers(-2048, 2048, shape).astype(np.int16)
    yield rng.integers(-32768, 32768, shape).astype(np.int16)  # hi - lo = 65535 does not fit int16
    yield rng.integers(-(2**31), 2**31 - 1, shape).astype(np.int32)
    yield rng.integers(0, 4096, shape).astype(">u2")  # big endian (NIfTI, old DICOM)
    yield rng.integers(-2048, 2048, shape).astype(">i2")
    yield (rng.random(shape) * 7 - 3).astype(np.float32)
    yield rng.random(shape) * 1e4 - 20.5  # float64 (modality LUT output)
    yield np.asfortranarray(rng.integers(0, 4096, shape).astype(np.uint16))
    yield rng.integers(0, 4096, (40, 60)).astype(np.uint16)[::2, 1::3]  # strided view


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("consume", [False, True])
def test_to_unit_range_is_bit_identical_to_the_reference(invert, consume):
    for x in _arrays():
        before = x.copy()
        expected = reference_unit_range(x, invert=invert)
        got = to_unit_range(x if not consume else x.copy(), [], invert=invert, consume=consume)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got, expected), x.dtype
        assert got.min() == 0.0 and got.max() == 1.0
        assert np.array_equal(x, before)  # never modified unless consumed


def test_to_unit_range_with_windows_and_padding_is_bit_identical():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4096, (50, 70)).astype(np.uint16)
    valid = np.ones(x.shape, bool)
    valid[:, :9] = False
    x[~valid] = 4095
    windows = [None, (1000.0, 3000.0), (999.5, 3100.5), (-10.0, 5000.0), (5000.0, 9000.0), (-900.0, -100.0),
               (70000.0, 80000.0), (-5.0, 2000.0), (1000.0, 1001.0), (10.0, 200.0), (10.5, 200.5)]
    for clip_to in windows:
        for invert in (False, True):
            for mask in (None, valid):
                for data in (x, x.astype(np.int16) - 1000, (x >> 4).astype(np.uint8)):
                    lo, hi = reference_bounds(data, clip_to, mask)
                    if not hi > lo:
                        continue  # a window outside the data: constant image, tested elsewhere
                    expected = reference_unit_range(data, invert=invert, clip_to=clip_to, valid=mask)
                    for consume in (False, True):
                        got = to_unit_range(data.copy(), [], invert=invert, clip_to=clip_to, valid=mask,
                                            consume=consume)
                        assert np.array_equal(got, expected), (data.dtype, clip_to, invert, mask is None)


def test_constant_image_is_zeros():
    applied: list[str] = []
    out = to_unit_range(np.full((4, 5), 9, np.uint16), applied)
    assert out.dtype == np.float32 and not out.any() and applied == ["constant_image"]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(37 * 53, dtype=np.uint32).reshape(37, 53).astype(np.uint8),
        (np.arange(37 * 53).reshape(37, 53) * 31).astype(np.uint16),
        np.arange(37 * 53, dtype=np.int32).reshape(37, 53) - 999,
        np.linspace(-1, 1, 37 * 53, dtype=np.float32).reshape(37, 53),
        np.stack([np.arange(37 * 53).reshape(37, 53) % 256] * 3, axis=-1).astype(np.uint8),
        np.random.default_rng(2).integers(0, 256, (37, 53, 4)).astype(np.uint8),
    ],
    ids=["L", "I;16", "I", "F", "RGB", "RGBA"],
)
def test_pillow_view_equals_asarray_and_outlives_the_image(array):
    im = Image.fromarray(array)
    expected = np.asarray(im).copy()
    view = pixels(im)
    assert not view.flags.writeable
    got = view[..., : expected.shape[-1]] if view.ndim == 3 else view
    assert np.array_equal(got, expected)
    im.close()
    del im
    gc.collect()
    _ = [Image.new(Image.fromarray(array).mode, array.shape[1::-1]) for _ in range(5)]  # reuse freed memory
    assert np.array_equal(got, expected)


def test_pillow_view_falls_back_for_images_in_several_blocks():
    im = Image.new("L", (4100, 4100), 7)  # 16.8 MB: beyond one Pillow block, no arrow export
    arr = pixels(im)
    assert arr.shape == (4100, 4100) and arr[0, 0] == 7 and arr[-1, -1] == 7


def test_channels_equal_on_rgbx_storage():
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (130, 70)).astype(np.uint8)  # 130 rows: several scratch blocks
    rgb = np.stack([gray] * 3, axis=-1)
    assert _channels_equal(pixels(Image.fromarray(rgb)))
    assert _channels_equal(rgb)  # (H, W, 3) fallback layout
    for channel in (0, 1, 2):
        other = rgb.copy()
        other[-1, -1, channel] ^= 1  # one pixel, last row, one channel
        assert not _channels_equal(pixels(Image.fromarray(other))), channel
        assert not _channels_equal(other), channel
    rgba = np.concatenate([rgb, rng.integers(0, 256, (130, 70, 1)).astype(np.uint8)], axis=-1)
    assert _channels_equal(pixels(Image.fromarray(rgba)))  # alpha is not a colour channel


def _pydicom_correction(arr: np.ndarray, allocated: int, stored: int) -> np.ndarray:
    out = arr.copy()
    np.left_shift(out, allocated - stored, out=out)
    np.right_shift(out, allocated - stored, out=out)
    return out


def test_unused_bits_mask_matches_pydicom():
    rng = np.random.default_rng(4)
    raw = rng.integers(0, 65536, (20, 30)).astype(np.uint16)
    for stored in (8, 12, 15, 16):
        assert np.array_equal(_mask_unused_bits(raw, 16, stored), _pydicom_correction(raw, 16, stored))
        signed = raw.view(np.int16)
        assert np.array_equal(_mask_unused_bits(signed, 16, stored), _pydicom_correction(signed, 16, stored))
    assert _mask_unused_bits(raw, 16, 16) is raw


@pytest.mark.parametrize("kind", ["unsigned12_overlay", "signed12_overlay", "unsigned16"])
def test_native_dicom_decode_matches_pydicom_pixel_array(kind, chest_u8, write_dicom):
    import pydicom
    from pydicom.pixels import apply_modality_lut

    v = chest_u8[::4, ::4].astype(np.uint16) * 16
    if kind == "unsigned12_overlay":
        path = write_dicom("u.dcm", v | np.uint16(0xB000), BitsStored=12)
    elif kind == "signed12_overlay":
        path = write_dicom("s.dcm", ((v.astype(np.int16) - 2048) & 0x0FFF | 0x5000).astype(np.int16), BitsStored=12)
    else:
        path = write_dicom("w.dcm", v * 16)
    expected = apply_modality_lut(pydicom.dcmread(path).pixel_array, pydicom.dcmread(path)).astype(np.float64)
    image, _ = read_radiograph(path, voi="none")
    assert np.array_equal(image, reference_unit_range(expected))
