"""Networks: the colorization-module registry, the families, and ``ColorizedClassifier``.

Pure modules: nothing here reads data files except the explicit pretrained-weight loader.
"""

from mcolor.networks import baselines, coloru, deconv, pixelshuffle  # noqa: F401  (registration)
from mcolor.networks.classifier import PARAM_GROUPS, ColorizedClassifier, check_backbone_name, unwrap
from mcolor.networks.registry import (
    create_color_module,
    is_color_module,
    list_color_modules,
    register_color_module,
)

__all__ = [
    "PARAM_GROUPS",
    "ColorizedClassifier",
    "check_backbone_name",
    "create_color_module",
    "is_color_module",
    "list_color_modules",
    "register_color_module",
    "unwrap",
]
