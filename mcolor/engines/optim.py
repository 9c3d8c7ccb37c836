"""Optimisers with per-group learning rates, and their LR schedules.

The colorization module is learned from scratch while backbone and head start from ImageNet, so each
named group (``color``, ``backbone``, ``head``) gets its own learning rate. Frozen groups stay in the
optimiser (their parameters simply get no gradient), so a stage switch needs no new optimiser and a
resumed run restores one consistent optimiser state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sized

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, OneCycleLR

from mcolor.errors import ConfigError
from mcolor.networks.classifier import PARAM_GROUPS, unwrap

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("onecycle", "cosine", "constant")


def build_optimizer(model: torch.nn.Module, name: str = "sgd", lr: float | Mapping[str, float] = 0.01,
                    weight_decay: float = 1e-4, momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over the named groups, each with its own ``lr``."""
    lrs = {g: float(lr) for g in PARAM_GROUPS} if not isinstance(lr, Mapping) else {
        g: float(lr.get(g, lr.get("default", 0.01))) for g in PARAM_GROUPS}
    unknown = set(lr) - set(PARAM_GROUPS) - {"default"} if isinstance(lr, Mapping) else set()
    if unknown:
        raise ConfigError(f"unknown parameter groups in lr: {sorted(unknown)}; valid: {PARAM_GROUPS}",
                          reason="bad_option")
    groups = [
        {"params": params, "lr": lrs[g], "name": g}
        for g, params in unwrap(model).named_param_groups().items() if params
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lrs["head"], momentum=momentum, nesterov=momentum > 0,
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lrs["head"], weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}", reason="bad_option")


def build_scheduler(optimizer: torch.optim.Optimizer, name: str = "onecycle", max_epochs: int = 1,
                    dataloader: Sized | None = None, epoch_length: int | None = None,
                    pct_start: float = 0.3) -> LRScheduler:
    """A per-iteration LR schedule over the whole run (``max_epochs`` x iterations per epoch).

    ``onecycle`` (the authors' choice) peaks at each group's configured LR; ``cosine`` decays each
    group's LR to zero; ``constant`` keeps them.
    """
    steps = epoch_length or (len(dataloader) if dataloader is not None else 1)
    total = max(1, int(max_epochs) * int(steps))
    if name == "onecycle":
        return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
                          pct_start=pct_start)
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total)
    if name == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    raise ConfigError(f"unknown lr scheduler {name!r}; valid: {', '.join(SCHEDULERS)}", reason="bad_option")


def epoch_length(dataset: Sized, batch_size: int, min_steps: int = 1) -> int:
    """Steps per epoch: one pass over ``dataset``, but at least ``min_steps``.

    With a few dozen training images (1 % of a dataset) a pass is one or two steps; a floor keeps the number
    of optimisation steps, and so the LR schedule and the validation period, meaningful at any fraction.
    """
    return max(int(min_steps), math.ceil(len(dataset) / int(batch_size)))
