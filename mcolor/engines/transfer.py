"""Kept for import paths of earlier versions: colour-module transfer lives in :mod:`mcolor.color_transfer`."""

from mcolor.color_transfer import FORMAT, export_color_module, load_color_module, read_color_module

__all__ = ["FORMAT", "export_color_module", "load_color_module", "read_color_module"]
