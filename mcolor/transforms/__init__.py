"""MONAI transforms for radiographs: load, normalise, letterbox (array and dictionary forms).

Loaded images are channel-first float32 ``(1, H, W)`` tensors in [0, 1], bone bright.
"""

from mcolor.transforms.intensity import (
    CHEXPERT_MEAN,
    CHEXPERT_STD,
    NORMALIZE_MODES,
    NormalizeRadiograph,
    NormalizeRadiographd,
)
from mcolor.transforms.io import LoadRadiograph, LoadRadiographd, radiograph_collate
from mcolor.transforms.spatial import (
    LETTERBOX_MODES,
    Letterbox,
    Letterboxd,
    LetterboxGeometry,
    letterbox_geometry,
)

__all__ = [
    "CHEXPERT_MEAN",
    "CHEXPERT_STD",
    "LETTERBOX_MODES",
    "NORMALIZE_MODES",
    "Letterbox",
    "LetterboxGeometry",
    "Letterboxd",
    "LoadRadiograph",
    "LoadRadiographd",
    "NormalizeRadiograph",
    "NormalizeRadiographd",
    "letterbox_geometry",
    "radiograph_collate",
]
