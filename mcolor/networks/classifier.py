"""``ColorizedClassifier``: a colorization module in front of any timm backbone.

Where ImageNet normalisation happens: the input is a 1-channel radiograph scaled to [0, 1] (or
standardised by the reader's transform). The colorization module maps it to 3 channels. Then, when
``imagenet_norm`` is on, the 3-channel output is standardised with the backbone's ImageNet mean/std
before it enters the backbone. The authors fed the module's output straight into the backbone (a
learned module learns the scale it needs), so ``imagenet_norm="auto"`` turns normalisation off for the
learned modules (``deconv``, ``pixelshuffle``, ``coloru``) and on for ``replicate`` and ``conv1x1``, whose
output is gray in [0, 1] and needs ImageNet statistics to use the pretrained weights well.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from mcolor.errors import ConfigError
from mcolor.networks.pretrained import load_backbone_weights, resolve_pretrained
from mcolor.networks.registry import create_color_module

#: Modules whose output is a plain gray replica: they need ImageNet standardisation by default.
NORMALISED_BY_DEFAULT = frozenset({"replicate", "conv1x1"})
PARAM_GROUPS = ("color", "backbone", "head")


def unwrap(network: nn.Module) -> Any:
    """The network inside a ``DistributedDataParallel`` (or ``DataParallel``) wrapper, else ``network``.

    Parameter groups, attributes (``.color``) and the state dict a bundle stores belong to the wrapped
    network: DDP's own state dict prefixes every key with ``module.``, which no bundle may hold.
    """
    return getattr(network, "module", network)


def check_backbone_name(name: str) -> None:
    """Raise :class:`ConfigError` listing close valid names when ``name`` is not a timm model."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=8, cutoff=0.5)
    suggestions = ", ".join(close) if close else "resnet18, densenet121, efficientnet_lite0, mobilenetv2_100"
    raise ConfigError(
        f"unknown backbone {name!r}; valid names are timm model names (timm.list_models()), e.g. {suggestions}",
        reason="unknown_backbone",
    )


class ColorizedClassifier(nn.Module):
    """Colorization module -> optional ImageNet standardisation -> timm backbone with a new head.

    Args:
        color_module: registry name of the colorization module (see ``mcolor.networks.list_color_modules``).
        backbone: timm model name.
        num_classes: outputs of the head (1 for binary, K for multi-class, L for multi-label).
        pretrained: ``False``, ``True`` (timm hub), ``"packaged"`` or a local weights path.
        imagenet_norm: ``"auto"``, ``True`` or ``False`` (see the module docstring).
        drop_rate: dropout before the head.
    """

    def __init__(
        self,
        color_module: str = "coloru",
        backbone: str = "efficientnet_lite0",
        num_classes: int = 1,
        pretrained: bool | str | Path = False,
        imagenet_norm: bool | str = "auto",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}", reason="bad_num_classes")
        check_backbone_name(backbone)
        self.color_module_name = color_module
        self.backbone_name = backbone
        self.num_classes = num_classes
        self.color = create_color_module(color_module)
        source = resolve_pretrained(backbone, pretrained)
        net = timm.create_model(backbone, pretrained=source is True, num_classes=1000 if source else num_classes,
                                drop_rate=drop_rate)
        if isinstance(source, Path):
            load_backbone_weights(net, backbone, source, net.pretrained_cfg.get("classifier"))
        if source and num_classes != 1000:
            net.reset_classifier(num_classes)
        self.backbone = net
        if imagenet_norm == "auto":
            imagenet_norm = color_module in NORMALISED_BY_DEFAULT
        elif not isinstance(imagenet_norm, bool):
            raise ConfigError(f"imagenet_norm must be 'auto', true or false, got {imagenet_norm!r}",
                              reason="bad_option")
        self.imagenet_norm = imagenet_norm
        cfg = net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1),
                             persistent=False)

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        """What the backbone actually sees: the colorization output, standardised if configured."""
        y = self.color(x)
        if self.imagenet_norm:
            y = (y - self.mean) / self.std
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.colorize(x))

    def head_module(self) -> nn.Module:
        """The backbone's classifier layer (timm's ``get_classifier``)."""
        return self.backbone.get_classifier()

    def named_param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters split into ``color``, ``backbone`` and ``head`` (for freezing and per-group LRs)."""
        head_ids = {id(p) for p in self.head_module().parameters()}
        groups: dict[str, list[nn.Parameter]] = {
            "color": list(self.color.parameters()),
            "head": [p for p in self.backbone.parameters() if id(p) in head_ids],
            "backbone": [p for p in self.backbone.parameters() if id(p) not in head_ids],
        }
        return groups

    def iter_group(self, name: str) -> Iterator[nn.Parameter]:
        """Parameters of one named group; raises ConfigError for an unknown group name."""
        if name not in PARAM_GROUPS:
            raise ConfigError(f"unknown parameter group {name!r}; valid: {', '.join(PARAM_GROUPS)}",
                              reason="bad_option")
        yield from self.named_param_groups()[name]

    def set_trainable(self, **groups: bool) -> None:
        """Freeze or unfreeze named groups, e.g. ``set_trainable(backbone=False, head=True)``.

        A frozen group also keeps its BatchNorm layers in eval mode (see :meth:`train`), so "frozen" means
        the ImageNet statistics are not overwritten by radiograph batches either.
        """
        for name, flag in groups.items():
            for p in self.iter_group(name):
                p.requires_grad_(flag)
        self._frozen = set(self.frozen_groups())
        self.train(self.training)

    def frozen_groups(self) -> list[str]:
        """Groups none of whose parameters require gradients."""
        return [g for g, ps in self.named_param_groups().items() if ps and not any(p.requires_grad for p in ps)]

    def train(self, mode: bool = True) -> ColorizedClassifier:
        super().train(mode)
        # MONAI calls train() every iteration: use the set cached by set_trainable, not a parameter scan.
        frozen = getattr(self, "_frozen", set())
        if mode and frozen:
            parts = {"color": self.color, "backbone": self.backbone}
            for name, module in parts.items():
                if name in frozen:
                    for m in module.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
        return self
