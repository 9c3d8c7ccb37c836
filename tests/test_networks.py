"""Colorization modules, the registry, ColorizedClassifier and its parameter groups."""

from __future__ import annotations

import pytest
import torch

from mcolor.errors import ConfigError
from mcolor.networks import ColorizedClassifier, create_color_module, list_color_modules

SIZES = [(32, 32), (64, 48), (67, 73), (97, 101), (128, 128), (225, 227)]
EXPECTED_PARAMS = {"deconv": (0.55e6, 0.65e6), "pixelshuffle": (0.55e6, 0.65e6), "coloru": (0.17e6, 0.21e6),
                   "replicate": (0, 0), "conv1x1": (6, 6)}


def test_registry_lists_the_paper_modules() -> None:
    assert set(list_color_modules()) >= {"deconv", "pixelshuffle", "coloru", "replicate", "conv1x1"}


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_module_shapes_finite_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    module = create_color_module(name)
    lo, hi = EXPECTED_PARAMS[name]
    n = sum(p.numel() for p in module.parameters())
    assert lo <= n <= hi, n
    for h, w in SIZES:
        x = torch.rand(2, 1, h, w, requires_grad=True)
        y = module(x)
        assert y.shape == (2, 3, h, w)
        assert torch.isfinite(y).all()
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        for p in module.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()
        module.zero_grad()


def test_learned_modules_are_not_constant() -> None:
    torch.manual_seed(0)
    for name in ("deconv", "pixelshuffle", "coloru"):
        module = create_color_module(name).eval()
        y = module(torch.rand(1, 1, 64, 64))
        assert y.std() > 0, name


def test_replicate_and_conv1x1_start_as_gray_copies() -> None:
    x = torch.rand(2, 1, 17, 19)
    for name in ("replicate", "conv1x1"):
        y = create_color_module(name)(x)
        assert torch.allclose(y, x.expand(-1, 3, -1, -1), atol=1e-6)


def test_unknown_module_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        create_color_module("rainbow")
    assert info.value.reason == "unknown_color_module"
    for name in ("deconv", "pixelshuffle", "coloru"):
        assert name in str(info.value)


def test_unknown_backbone_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        ColorizedClassifier("replicate", "resnet_18")
    assert info.value.reason == "unknown_backbone"
    assert "resnet18" in str(info.value)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv2_100", "efficientnet_lite0"])
def test_classifier_groups_cover_every_parameter_once(backbone: str) -> None:
    model = ColorizedClassifier("coloru", backbone, num_classes=3)
    groups = model.named_param_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    head = model.head_module()
    assert {id(p) for p in head.parameters()} == {id(p) for p in groups["head"]}
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 3)


def test_freezing_a_group_blocks_its_gradients_and_batchnorm_stats() -> None:
    model = ColorizedClassifier("deconv", "resnet18", num_classes=1)
    model.set_trainable(backbone=False, color=True, head=True)
    model.train()
    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    model(torch.rand(4, 1, 64, 64)).sum().backward()
    assert all(p.grad is None for p in model.named_param_groups()["backbone"])
    assert all(p.grad is not None for p in model.named_param_groups()["color"])
    assert not bn.training and torch.equal(before, bn.running_mean)
    assert model.frozen_groups() == ["backbone"]


def test_imagenet_normalisation_placement() -> None:
    rep = ColorizedClassifier("replicate", "resnet18")
    learned = ColorizedClassifier("coloru", "resnet18")
    assert rep.imagenet_norm is True and learned.imagenet_norm is False
    x = torch.full((1, 1, 8, 8), 0.485)
    assert torch.allclose(rep.colorize(x)[0, 0], torch.zeros(8, 8), atol=1e-6)
    forced = ColorizedClassifier("coloru", "resnet18", imagenet_norm=True)
    assert forced.imagenet_norm is True
    with pytest.raises(ConfigError):
        ColorizedClassifier("coloru", "resnet18", imagenet_norm="sometimes")


def test_unwrap_reaches_the_network_inside_a_parallel_wrapper() -> None:
    """Optimiser groups and saved state come from the wrapped network, never DDP's ``module.`` keys."""
    from mcolor.artifact import load_state
    from mcolor.engines.optim import build_optimizer
    from mcolor.networks import unwrap

    model = ColorizedClassifier("replicate", "resnet18", num_classes=1)
    wrapped = torch.nn.DataParallel(model)  # same ``.module`` attribute as DistributedDataParallel
    assert unwrap(wrapped) is model and unwrap(model) is model
    names = [g["name"] for g in build_optimizer(wrapped).param_groups]
    assert names == [g["name"] for g in build_optimizer(model).param_groups] and "head" in names
    assert all(k.startswith("module.") for k in wrapped.state_dict())
    load_state(wrapped, model.state_dict())  # strict: fits only because the wrapper is looked through
