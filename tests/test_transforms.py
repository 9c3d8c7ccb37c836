"""MONAI transforms: loading into a DataLoader, letterbox geometry, intensity normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose

from mcolor.errors import ConfigError
from mcolor.io import read_radiograph
from mcolor.transforms import (
    CHEXPERT_MEAN,
    CHEXPERT_STD,
    Letterbox,
    Letterboxd,
    LoadRadiograph,
    LoadRadiographd,
    NormalizeRadiograph,
    NormalizeRadiographd,
    letterbox_geometry,
    radiograph_collate,
)

# --- loading --------------------------------------------------------------------------------------


def test_load_radiograph_array_form(chest_png):
    image = LoadRadiograph()(chest_png)
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32 and image.shape == (1, 512, 512)
    np.testing.assert_array_equal(image[0].numpy(), read_radiograph(chest_png)[0])
    image2, meta = LoadRadiograph(image_only=False)(str(chest_png))
    assert torch.equal(image, image2) and meta["source_format"] == "png"


def test_load_options_fail_when_the_pipeline_is_built():
    with pytest.raises(ConfigError):
        LoadRadiograph(voi="lung")
    with pytest.raises(ConfigError):
        LoadRadiographd(keys="image", max_pixels=-1)
    with pytest.raises(ConfigError):
        LoadRadiographd(keys="image", meta_key_postfix="")


def _samples(radiographs_dir, dicom_dir):
    """Images of different sizes and formats: 512x512 PNG, 1024x1024 DICOM, 885x1036 JPEG, RGB PNG."""
    tbx = sorted((radiographs_dir / "tbx11k" / "imgs").rglob("*.png"))[:1]
    paths = [
        radiographs_dir / "00000001_000.png",
        dicom_dir / "siim_cr_chest_monochrome2_jpeg.dcm",
        radiographs_dir / "16747_3_1.jpg",
        *tbx,
    ]
    return [{"image": str(p), "label": i % 2} for i, p in enumerate(paths)]


def test_dictionary_pipeline_collates_in_a_dataloader(radiographs_dir, dicom_dir):
    pipeline = Compose(
        [
            LoadRadiographd(keys="image"),
            NormalizeRadiographd(keys="image", mode="percentile"),
            Letterboxd(keys="image", size=96),
        ]
    )
    loader = DataLoader(Dataset(_samples(radiographs_dir, dicom_dir), transform=pipeline), batch_size=2)
    batches = list(loader)
    assert [tuple(b["image"].shape) for b in batches] == [(2, 1, 96, 96), (2, 1, 96, 96)]
    assert batches[0]["label"].tolist() == [0, 1]
    # antialiased bilinear is a convex combination: the range holds up to float rounding (1 ulp)
    assert all(float(b["image"].min()) >= 0.0 and float(b["image"].max()) <= 1.0 + 1e-6 for b in batches)


def test_meta_postfix_stores_meta_and_collates_with_radiograph_collate(radiographs_dir, dicom_dir):
    pipeline = Compose(
        [LoadRadiographd(keys="image", meta_key_postfix="meta"), Letterboxd(keys="image", size=64)]
    )
    sample = pipeline(_samples(radiographs_dir, dicom_dir)[1])
    assert sample["image_meta"]["modality"] == "CR" and "image_meta_dict" not in sample
    loader = DataLoader(
        Dataset(_samples(radiographs_dir, dicom_dir), transform=pipeline),
        batch_size=2,
        collate_fn=radiograph_collate,
    )
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 1, 64, 64)
    assert [m["source_format"] for m in batch["image_meta"]] == ["png", "dicom"]


def test_default_dictionary_form_has_no_meta(chest_png):
    out = LoadRadiographd(keys="image")({"image": chest_png, "other": 3})
    assert set(out) == {"image", "other"} and out["image"].shape == (1, 512, 512)


# --- letterbox ------------------------------------------------------------------------------------


def test_letterbox_pad_keeps_aspect_and_centres():
    x = torch.ones(1, 300, 150)
    y = Letterbox(224)(x)
    assert y.shape == (1, 224, 224)
    cols = (y[0] > 0.5).any(dim=0).nonzero().flatten()
    assert (cols.min().item(), cols.max().item()) == (56, 167)  # 112 wide = 224 * 150 / 300, centred
    assert (y[0, :, :56] == 0).all() and (y[0, :, 168:] == 0).all()
    assert letterbox_geometry(300, 150, 224) == (224, 112, 0, 56, None)


def test_letterbox_crop_fills_the_square():
    x = torch.ones(1, 300, 150)
    x[:, :10] = 0  # top rows are cut away by the centre crop
    y = Letterbox(224, mode="crop")(x)
    assert y.shape == (1, 224, 224) and torch.allclose(y, torch.ones_like(y))
    assert letterbox_geometry(300, 150, 224, "crop").crop_box == (75, 0, 150, 150)


def test_letterbox_non_square_target_upscale_and_types():
    y = Letterbox((64, 128))(np.ones((2, 10, 10), np.float32))
    assert isinstance(y, np.ndarray) and y.shape == (2, 64, 128) and y.dtype == np.float32
    assert (y[:, :, 32:96] > 0.99).all() and (y[:, :, :32] == 0).all()
    meta = Letterbox(32)(MetaTensor(torch.rand(1, 40, 20)))
    assert type(meta) is torch.Tensor and meta.shape == (1, 32, 32)
    same = Letterbox(16)(torch.rand(1, 16, 16, dtype=torch.float64))
    assert same.dtype == torch.float32


def test_letterbox_antialiases_when_shrinking():
    checker = (torch.arange(512)[:, None] + torch.arange(512)[None, :]) % 2
    y = Letterbox(64)(checker[None].float())
    assert abs(float(y.mean()) - 0.5) < 0.01 and float(y.std()) < 0.05  # no moire


def test_letterbox_rejects_bad_input():
    with pytest.raises(ValueError):
        Letterbox(32)(torch.ones(10, 10))
    with pytest.raises(ConfigError):
        Letterbox(0)
    with pytest.raises(ConfigError):
        Letterbox(32, mode="squash")


def test_letterbox_stretch_fills_the_square_without_keeping_aspect():
    img = torch.zeros(1, 40, 20)
    img[:, :20] = 1.0  # top half bright
    out = Letterbox(10, mode="stretch")(img)
    assert out.shape == (1, 10, 10)
    assert torch.all(out[:, :4] > 0.99) and torch.all(out[:, 6:] < 0.01)  # no bars: the top half fills rows 0-4
    assert letterbox_geometry(40, 20, 10, "stretch") == (10, 10, 0, 0, None)
    padded = Letterbox(10, mode="pad")(img)
    assert torch.all(padded[:, :, :2] == 0) and torch.all(padded[:, :, -2:] == 0)  # pad keeps the aspect: bars


def test_letterbox_dictionary_form():
    out = Letterboxd(keys=["a", "b"], size=8, mode="crop")(
        {"a": torch.rand(1, 20, 10), "b": torch.rand(1, 5, 5)}
    )
    assert out["a"].shape == out["b"].shape == (1, 8, 8)


# --- normalisation --------------------------------------------------------------------------------


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 50, 40, generator=g) * 0.5 + 0.2
    x[0, 0, 0] = 5.0  # one burnt-in label pixel
    return x


def test_normalize_minmax():
    y = NormalizeRadiograph("minmax")(_image())
    assert float(y.min()) == 0.0 and float(y.max()) == 1.0


def test_normalize_percentile_is_robust_to_outliers():
    x = _image()
    y = NormalizeRadiograph("percentile", lower=0.5, upper=99.5)(x)
    minmax = NormalizeRadiograph("minmax")(x)
    assert float(y.min()) == 0.0 and float(y.max()) == 1.0
    assert float(y.median()) > 0.3 and float(minmax.median()) < 0.1  # the outlier no longer squashes


def test_normalize_meanstd_fixed_and_per_image():
    x = _image()
    y = NormalizeRadiograph("meanstd")(x)
    torch.testing.assert_close(y, (x - CHEXPERT_MEAN) / CHEXPERT_STD)
    z = NormalizeRadiograph("meanstd", mean=None, std=None)(x)
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std(correction=0)) - 1) < 1e-4


@pytest.mark.parametrize("mode", ["minmax", "percentile", "meanstd"])
def test_normalize_constant_image_gives_zeros_not_nan(mode):
    kwargs = {"mean": None, "std": None} if mode == "meanstd" else {}
    y = NormalizeRadiograph(mode, **kwargs)(torch.full((1, 8, 8), 0.3))
    assert torch.equal(y, torch.zeros(1, 8, 8))


def test_normalize_keeps_type_and_does_not_mutate_input():
    x = np.linspace(0, 2, 64, dtype=np.float32).reshape(1, 8, 8)
    before = x.copy()
    y = NormalizeRadiograph("percentile")(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    out = NormalizeRadiographd(keys="image", mode="minmax")({"image": torch.from_numpy(x)})
    assert float(out["image"].max()) == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"mode": "zscore"}, {"lower": 60, "upper": 40}, {"std": 0.0}, {"mean": float("nan")}]
)
def test_normalize_rejects_bad_options(kwargs):
    with pytest.raises(ConfigError):
        NormalizeRadiograph(**kwargs)


def test_percentile_subsample_estimate_is_close_to_exact(testdata_file):
    x = LoadRadiograph()(testdata_file("RG1_UNCI.dcm"))  # 1955 x 1841: above the 2**18 sample cap
    fast = NormalizeRadiograph("percentile")(x)
    exact = NormalizeRadiograph("percentile", max_samples=None)(x)
    assert float((fast - exact).abs().max()) < 0.01
