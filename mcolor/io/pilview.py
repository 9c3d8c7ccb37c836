"""Zero-copy numpy views of decoded Pillow images, through the Arrow C Data Interface.

``np.asarray(pil_image)`` goes through ``Image.tobytes()``: the raw encoder writes the pixels into 64 KiB
chunks and ``b"".join`` copies them again, two full copies before the reader even starts. Pillow >= 11.2
exports its image memory with ``__arrow_c_array__`` (a PyCapsule holding an ``ArrowArray`` struct, a
stable C ABI); reading the struct's data pointer gives a read-only view of the decoded pixels, with no copy.
The capsule is kept alive by the view, and releasing it (when the view dies) drops Pillow's reference to the
pixel memory, so the view stays valid after the image is closed.

Anything unexpected (an older Pillow, an image Pillow stores in several memory blocks, a layout that is not
the plain one checked below) falls back to ``np.asarray``: the view is an optimisation, never a requirement.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from PIL import Image

#: Pillow mode -> (numpy typestr of one sample, samples per pixel in Pillow's storage).
#: RGB is stored as 4 bytes per pixel (RGBX); the fourth byte is padding or alpha.
_LAYOUT: dict[str, tuple[str, int]] = {
    "L": ("|u1", 1),
    "I;16": ("<u2", 1),  # little endian whatever the machine
    "I": (np.dtype(np.int32).str, 1),  # native
    "F": (np.dtype(np.float32).str, 1),
    "RGB": ("|u1", 4),
    "RGBA": ("|u1", 4),
    "RGBX": ("|u1", 4),
}


class _ArrowArray(ctypes.Structure):
    """``struct ArrowArray`` of the Arrow C Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html)."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]

# Our own prototype of PyCapsule_GetPointer: setting argtypes on ctypes.pythonapi's shared function object
# would change it for every other user in the process.
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)


class _View:
    """Owner of the exported memory: holds the capsule for as long as the numpy view lives."""

    def __init__(self, capsule: Any, pointer: int, shape: tuple[int, ...], typestr: str) -> None:
        self._capsule = capsule
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": typestr, "data": (pointer, True)}


def pixels(im: Image.Image) -> np.ndarray:
    """Decoded pixels of ``im`` as a numpy array: a read-only zero-copy view when possible.

    Shape ``(H, W)`` for single-band modes, ``(H, W, 4)`` for RGB/RGBA/RGBX (Pillow's 4-byte storage),
    else whatever ``np.asarray`` gives (e.g. ``(H, W, 3)`` for RGB images that cannot be exported).
    ``im`` must be loaded.
    """
    view = _arrow_view(im)
    return np.asarray(im) if view is None else view


def _arrow_view(im: Image.Image) -> np.ndarray | None:
    layout = _LAYOUT.get(im.mode)
    export = getattr(im.im, "__arrow_c_array__", None)
    if layout is None or export is None:
        return None
    typestr, samples = layout
    width, height = im.size
    try:
        capsule = export()
        array = _ArrowArray.from_address(_capsule_pointer(capsule, b"arrow_array"))
    except Exception:  # not a single memory block, or no arrow support: copy instead
        return None
    if array.n_children == 1 and samples > 1:  # fixed-size list of 4 bytes per pixel
        array = array.children[0].contents
    elif array.n_children != 0 or samples != 1:
        return None
    expected = width * height * samples
    if array.length != expected or array.offset != 0 or array.n_buffers != 2 or not array.buffers[1]:
        return None
    if array.buffers[0] and array.null_count != 0:  # a validity bitmap that may mark nulls
        return None
    shape = (height, width) if samples == 1 else (height, width, samples)
    return np.asarray(_View(capsule, array.buffers[1], shape, typestr))
