"""Reading radiographs: one reader for every format (see :func:`read_radiograph`).

Formats are recognised by content: DICOM (:mod:`~mcolor.io.dicom`, pydicom), PNG / JPEG / TIFF
(:mod:`~mcolor.io.raster`, Pillow), MetaImage ``.mha`` / ``.mhd`` and NRRD ``.nrrd`` / ``.nhdr``
(:mod:`~mcolor.io.itk`, SimpleITK) and NIfTI ``.nii`` / ``.nii.gz`` / ``.hdr`` (:mod:`~mcolor.io.nifti`,
nibabel). SimpleITK and nibabel are imported only when such a file is read. Volumes must hold one 2-D
plane; orientation and colour rules for them are in :mod:`~mcolor.io.planes`.
"""

from mcolor.errors import RadiographReadError
from mcolor.io.common import DEFAULT_MAX_PIXELS, META_KEYS, READ_ERROR_REASONS
from mcolor.io.radiograph import FORMATS, VOI_MODES, read_radiograph

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "META_KEYS",
    "READ_ERROR_REASONS",
    "VOI_MODES",
    "RadiographReadError",
    "read_radiograph",
]
