"""Optional dependencies ("extras"): what each one installs, what it enables, and the one way to import them.

The core install (``pip install mcolor``) trains, evaluates and infers with the default configs. Figures,
TensorBoard logs, DICOM SR output, MLflow tracking and ONNX each need an extra. Every optional import goes
through :func:`require` (or :func:`enabled` for ``auto`` settings), so a missing package surfaces as a
:class:`~mcolor.errors.MissingExtraError` naming the exact ``pip install`` command, before the work that needs
it starts, instead of an ``ImportError`` traceback from deep inside a run.

:data:`EXTRAS`, ``pyproject.toml``'s ``[project.optional-dependencies]`` and the README's "Extras" paragraph
say the same thing; ``tests/test_extras.py`` checks the first two against each other.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from types import ModuleType

from mcolor.errors import MissingExtraError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extra:
    """One extra: the importable modules it installs (distribution names live in ``pyproject.toml``) and what
    it enables, in words a user can match to the command that failed."""

    modules: tuple[str, ...]
    enables: str


EXTRAS: dict[str, Extra] = {
    "sr": Extra(("highdicom",), "DICOM Structured Reports: mcolor infer --sr"),
    "plots": Extra(("matplotlib",), "figures: evaluation roc.png/confusion.png, mcolor infer --previews, "
                                    "the sweep's learning_curve.png, mcolor card"),
    "tensorboard": Extra(("tensorboard",), "TensorBoard logs of training (train.json: tensorboard)"),
    "tracking": Extra(("mlflow",), "MLflow tracking: --tracking configs/mlflow_tracking.json"),
    "onnx": Extra(("onnx", "onnxruntime"), "ONNX export (mcolor bundle pack --onnx, verify) and "
                                           "mcolor infer --backend onnx"),
}

#: Extras whose absence an ``auto`` setting has already reported (one INFO line per process, not per handler).
_reported: set[str] = set()


def install_hint(extra: str) -> str:
    """The exact command that installs ``extra``."""
    return f"pip install 'mcolor[{extra}]'"


def _extra(extra: str) -> Extra:
    try:
        return EXTRAS[extra]
    except KeyError:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}") from None


def require(extra: str, feature: str, module: str | None = None) -> ModuleType:
    """Import every module of ``extra`` and return ``module`` (default: the extra's first one).

    Raises:
        MissingExtraError: one of them cannot be imported; the message names ``feature``, the module and the
            ``pip install`` command. A broken install (the package present, one of its own imports failing)
            reads the same, with the import error's text, because the fix is the same reinstall.
    """
    spec = _extra(extra)
    wanted = module or spec.modules[0]
    found: dict[str, ModuleType] = {}
    for name in dict.fromkeys((*spec.modules, wanted)):
        try:
            found[name] = importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtraError(
                f"{feature} needs the optional '{extra}' extra ({name} cannot be imported: {exc}); "
                f"install it with: {install_hint(extra)}",
                extra=extra,
            ) from exc
    return found[wanted]


def available(extra: str) -> bool:
    """Whether every module of ``extra`` is installed, without importing any (cheap: for skip decisions and
    reports; :func:`require` is the import that counts)."""
    for name in _extra(extra).modules:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # a finder refusing the name, or ``sys.modules[name] = None``
            return False
    return True


def enabled(setting: bool | str | None, extra: str, feature: str) -> bool:
    """Resolve a tri-state option of a feature that needs ``extra``.

    ``auto``: on when the extra imports, else off with one INFO log line (per extra and process), so the core
    install runs the default configs. ``true``: required, :class:`MissingExtraError` when missing (asked for,
    so never dropped silently). ``false``: off, nothing imported.
    """
    from mcolor.options import parse_bool

    if isinstance(setting, str) and setting.strip().lower() == "auto":
        try:
            require(extra, feature)
        except MissingExtraError:
            if extra not in _reported:
                _reported.add(extra)
                log.info("%s skipped: the optional '%s' extra is not installed (%s)", feature, extra,
                         install_hint(extra))
            return False
        return True
    if parse_bool(setting, extra):
        require(extra, feature)
        return True
    return False


def pyplot(feature: str) -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display on servers and in workers)."""
    matplotlib = require("plots", feature)
    matplotlib.use("Agg")
    return require("plots", feature, "matplotlib.pyplot")
