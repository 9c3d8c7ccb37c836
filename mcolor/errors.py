"""Typed errors shared by every layer.

Every error carries a machine-readable ``reason`` (a short snake_case code that tests, the CLI and
``mcolor infer`` reports can rely on) and a human sentence. The CLI prints ``error [reason]: message``
instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class McolorError(Exception):
    """Base class of all errors raised on purpose by mcolor."""

    default_reason = "error"

    def __init__(self, message: str, reason: str | None = None, path: str | Path | None = None) -> None:
        self.reason = reason or self.default_reason
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class ConfigError(McolorError, ValueError):
    """A setting is wrong: unknown registry name, bad option value, missing path."""

    default_reason = "bad_config"


class MissingExtraError(ConfigError):
    """A feature was asked for whose optional dependencies (an extra, :data:`mcolor.extras.EXTRAS`) are not installed.

    A ``ConfigError`` because the fix is a setting or an install, never a code change; ``extra`` names the extra
    so that the message and callers can give the exact ``pip install 'mcolor[...]'`` command.
    """

    default_reason = "missing_extra"

    def __init__(self, message: str, extra: str, reason: str | None = None, path: str | Path | None = None) -> None:
        self.extra = extra
        super().__init__(message, reason, path)


class WeightsError(McolorError, ValueError):
    """Pretrained weights do not match the model they are loaded into, or cannot be found."""

    default_reason = "weights_mismatch"


class RadiographReadError(McolorError, ValueError):
    """A file cannot be decoded into a single grayscale radiograph.

    ``reason`` is one of the codes in :data:`mcolor.io.READ_ERROR_REASONS`.
    """

    default_reason = "unreadable"


class ManifestError(McolorError, ValueError):
    """A data manifest is missing, malformed, or fails validation."""

    default_reason = "bad_manifest"


class BundleError(McolorError, ValueError):
    """A bundle (directory or zip) is incomplete, unsafe, or fails verification."""

    default_reason = "bad_bundle"


class TrainingError(McolorError, RuntimeError):
    """Training cannot continue (non-finite loss, unusable output directory, corrupt checkpoint)."""

    default_reason = "training_failed"
