"""Bundles as shareable artefacts: open (folder or zip, safely), verify, pack, export.

``open_bundle`` never runs a bundle's config code unless asked to (``trust_bundle=True``).
"""

from mcolor.bundle.loading import MODEL_ONNX, MODEL_PT, MODEL_TS, Bundle, open_bundle
from mcolor.bundle.metadata import check_metadata, metadata_problems, schema_path

__all__ = ["MODEL_ONNX", "MODEL_PT", "MODEL_TS", "Bundle", "check_metadata", "metadata_problems",
           "open_bundle", "schema_path"]
