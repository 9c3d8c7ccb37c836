"""The one registry of colorization modules, in timm's style.

A colorization module maps a 1-channel radiograph ``(B, 1, H, W)`` to 3 channels ``(B, 3, H, W)`` at
the input's spatial size. Each family file registers its constructor with :func:`register_color_module`;
everything else (configs, the classifier, bundle loading, colour-module export) goes through
:func:`create_color_module` so that one name always means one architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from mcolor.errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_color_module(name: str) -> Callable[[F], F]:
    """Decorator registering a colorization-module constructor under ``name``."""

    def wrap(fn: F) -> F:
        if name in _REGISTRY:
            raise ConfigError(f"colorization module {name!r} is registered twice", reason="duplicate_name")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_color_modules() -> list[str]:
    """Registered colorization-module names, sorted."""
    return sorted(_REGISTRY)


def is_color_module(name: str) -> bool:
    """Whether ``name`` is a registered colorization module."""
    return name in _REGISTRY


def create_color_module(name: str, **kwargs: Any) -> nn.Module:
    """Build the colorization module registered as ``name``.

    Raises:
        ConfigError: ``name`` is unknown; the message lists the valid names.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown colorization module {name!r}; valid names: {', '.join(list_color_modules())}",
            reason="unknown_color_module",
        )
    module = _REGISTRY[name](**kwargs)
    module.registry_name = name  # type: ignore[assignment]
    return module
