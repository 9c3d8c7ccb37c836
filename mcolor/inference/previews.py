"""Preview panels: the input, what the backbone sees (the colorization output) and a Grad-CAM overlay.

Grad-CAM is MONAI's :class:`monai.visualize.GradCAM` on the backbone's last feature stage, found
generically from timm's ``feature_info`` (the last entry is the deepest stage before global pooling:
``layer4`` for ResNets, ``blocks.6`` for EfficientNet-Lite, ``features.norm5`` for DenseNet), falling back
to the last ``Conv2d``. It needs hooks on an eager module, so it runs on a private copy of the eager
network, never on TorchScript and never on the network that makes the predictions.

Panels are written with Pillow with a fixed, PHI-free text chunk; the pictures carry probabilities and
the disclaimer, not the file name.
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.visualize import GradCAM
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin
from torch import nn

from mcolor.atomic import atomic_write
from mcolor.extras import require
from mcolor.inference.models import InferenceModel
from mcolor.inference.scan import FileRecord

log = logging.getLogger(__name__)

PREVIEW_DIR = "previews"
_TITLE_H, _FOOT_H = 22, 40


def gradcam_layer(network: nn.Module) -> str:
    """Name (in ``network.named_modules()``) of the backbone's last feature stage, for Grad-CAM."""
    names = dict(network.named_modules())
    info = getattr(getattr(network, "backbone", None), "feature_info", None)
    if info:
        last = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
        if f"backbone.{last}" in names:
            return f"backbone.{last}"
    convs = [n for n, m in names.items() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("no Conv2d layer for Grad-CAM")
    return convs[-1]


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1] (MONAI's default CAM normaliser flips the map; this one does not)."""
    flat = x.reshape(x.shape[0], -1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (x.ndim - 1)
    return ((x - lo.view(shape)) / (hi - lo).clamp_min(1e-12).view(shape)).clamp(0, 1)


class CamMaker:
    """Grad-CAM maps for a batch, one backward pass per distinct target class."""

    def __init__(self, model: InferenceModel) -> None:
        self.model = model
        self.network = copy.deepcopy(model.eager).eval()
        for p in self.network.parameters():
            p.requires_grad_(True)
        self.layer = gradcam_layer(self.network)
        self.cam = GradCAM(self.network, target_layers=self.layer, postprocessing=_unit)

    def target(self, probs: list[float]) -> int:
        return 0 if self.model.num_outputs == 1 else int(np.argmax(probs))

    def __call__(self, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
        maps = torch.zeros(x.shape[0], 1, *x.shape[2:])
        with torch.enable_grad():
            for cls in sorted(set(targets)):
                rows = [i for i, t in enumerate(targets) if t == cls]
                maps[rows] = self.cam(x[rows].detach(), class_idx=cls).detach().float().cpu()
        return maps


def _gray_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat((np.clip(x, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _tile(arr: np.ndarray, size: int) -> Image.Image:
    return Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR)


def panel(display: np.ndarray, colorized: np.ndarray, cam: np.ndarray | None, caption: str) -> Image.Image:
    """One RGB panel: input | colorization output (rescaled) | Grad-CAM over the input."""
    size = display.shape[0]
    base = _gray_rgb(display)
    color = _tile(
        (np.clip(_unit(torch.from_numpy(colorized)[None])[0].numpy(), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0),
        size,
    )
    if cam is not None:
        heat = np.asarray(_tile((cam * 255).astype(np.uint8), size), dtype=np.float32) / 255.0
        rgb = require("plots", "preview panels (--previews)").colormaps["jet"](heat)[..., :3]
        overlay = Image.fromarray((0.6 * base + 0.4 * 255 * rgb).astype(np.uint8))
    else:
        overlay = Image.new("RGB", (size, size), (40, 40, 40))
    out = Image.new("RGB", (3 * size, size + _TITLE_H + _FOOT_H), (0, 0, 0))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=13)
    for k, (title, tile) in enumerate(
        (
            ("input (as read)", Image.fromarray(base)),
            ("colorization output (network input)", color),
            ("Grad-CAM" if cam is not None else "Grad-CAM unavailable", overlay),
        )
    ):
        out.paste(tile, (k * size, _TITLE_H))
        draw.text((k * size + 4, 4), title, fill=(255, 255, 255), font=font)
    draw.text((4, size + _TITLE_H + 4), caption, fill=(255, 255, 0), font=font)
    draw.text((4, size + _TITLE_H + 21), "Research software - NOT FOR CLINICAL USE", fill=(255, 120, 120), font=font)
    return out


def save_png(image: Image.Image, path: Path) -> None:
    """Atomic PNG with only a fixed ``Software``/``Disclaimer`` text chunk (nothing from the input)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "mcolor")
    info.add_text("Disclaimer", "Research software output; not for clinical use")
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), mode="wb")


def caption(record: FileRecord, model: InferenceModel) -> str:
    probs = record.probabilities or []
    parts = [f"{n} {p:.3f}" for n, p in zip(model.output_names, probs, strict=True)][:4]
    return f"{', '.join(parts)}  ->  {record.predicted}"


class PreviewWriter:
    """Batch callback of the inference loop (after the prediction writer): a panel per predicted image under
    ``OUT_DIR/previews/``."""

    def __init__(self, model: InferenceModel, records: list[FileRecord], output_dir: str | Path) -> None:
        self.model, self.records = model, records
        self.folder = Path(output_dir) / PREVIEW_DIR
        self.cams: CamMaker | None = None
        try:
            self.cams = CamMaker(model)
        except Exception as exc:
            log.warning("Grad-CAM unavailable for this model (%s): panels without it", type(exc).__name__)

    def __call__(self, batch: dict[str, Any], probs: Any) -> None:
        if not batch["index"]:
            return
        x = batch["image"].to(self.model.device)
        with torch.no_grad():
            colorized = self.model.eager.colorize(x).float().cpu().numpy()
        records = [self.records[i] for i in batch["index"]]
        cams = None
        if self.cams is not None:
            try:
                cams = self.cams(x, [self.cams.target(r.probabilities or [0.0]) for r in records]).numpy()
            except Exception as exc:
                log.warning("Grad-CAM failed on a batch (%s): panels without it", type(exc).__name__)
        display = batch["display"] if batch["display"] is not None else x.cpu()
        for k, (index, record) in enumerate(zip(batch["index"], records, strict=True)):
            name = f"{index:05d}.png"
            image = panel(
                display[k, 0].numpy(),
                colorized[k],
                None if cams is None else cams[k, 0],
                caption(record, self.model),
            )
            save_png(image, self.folder / name)
            record.preview = f"{PREVIEW_DIR}/{name}"
