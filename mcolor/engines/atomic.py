"""Kept for import paths that packed bundles and older code use: the writer lives in :mod:`mcolor.atomic`."""

from mcolor.atomic import atomic_open, atomic_write

__all__ = ["atomic_open", "atomic_write"]
