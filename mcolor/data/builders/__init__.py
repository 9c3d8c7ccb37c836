"""Dataset builders: turn a public dataset as downloaded into a manifest (``mcolor manifest ...``).

Each builder writes ``OUT/manifest.csv`` + ``OUT/manifest.json`` through
:func:`mcolor.data.manifests.write_manifest` and returns the written :class:`Manifest`; the exact
commands and expected counts per dataset are in ``data_manifests/``.
"""

from mcolor.data.builders.chexpert import build_chexpert
from mcolor.data.builders.folders import build_folders, kermany_patient_id
from mcolor.data.builders.medmnist import build_medmnist
from mcolor.data.builders.nih import build_nih

__all__ = ["build_chexpert", "build_folders", "build_medmnist", "build_nih", "kermany_patient_id"]
