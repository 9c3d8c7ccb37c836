"""Reading radiographs: one reader for DICOM, PNG, JPEG and TIFF (see :func:`read_radiograph`)."""

from mcolor.errors import RadiographReadError
from mcolor.io.common import DEFAULT_MAX_PIXELS, META_KEYS, READ_ERROR_REASONS
from mcolor.io.radiograph import VOI_MODES, read_radiograph

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "META_KEYS",
    "READ_ERROR_REASONS",
    "VOI_MODES",
    "RadiographReadError",
    "read_radiograph",
]
