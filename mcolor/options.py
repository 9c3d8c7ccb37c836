"""Option parsing shared by configs and the CLI: booleans, devices, AMP.

``python -m monai.bundle run --x false`` passes the *string* ``"false"``, YAML and JSON pass real booleans,
and environment variables pass text: every layer parses such values through these functions, so that
``"off"`` means the same thing everywhere. Dependency-free (torch only), so inference can use it without
the training stack.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mcolor.errors import ConfigError

log = logging.getLogger(__name__)

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "", "none", "null")
AMP_DTYPES = ("float16", "bfloat16")


def parse_bool(value: object, name: str = "option") -> bool:
    """A boolean from a config, command-line or environment value; anything unclear is a ConfigError."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}", reason="bad_option")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"bad device {device!r}: {exc}", reason="bad_option") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available", reason="bad_option")
    return dev


def resolve_amp(amp: bool | str | None, device: torch.device) -> bool:
    """``auto`` -> AMP on CUDA, off on CPU. AMP on CPU is refused (it is slower there and untested)."""
    if amp in ("auto", None):
        return device.type == "cuda"
    flag = parse_bool(amp, "amp")
    if flag and device.type != "cuda":
        log.warning("amp requested on %s: ignored (AMP is for CUDA)", device)
        return False
    return flag


def amp_kwargs(dtype: str = "float16") -> dict[str, Any]:
    """``autocast`` keyword arguments for the trainer: ``float16`` (with GradScaler) or ``bfloat16``."""
    if dtype not in AMP_DTYPES:
        raise ConfigError(f"amp_dtype must be float16 or bfloat16, got {dtype!r}", reason="bad_option")
    return {"dtype": getattr(torch, dtype)}
