"""The selected files as a dataset: decode with the one reader, prepare as training did, never fail a run.

A sample carries either the network input or its error, so a file that fails to decode becomes an ``error``
row instead of ending the run; :func:`tolerant_collate` stacks the images and passes the failures alongside.
``transform`` is the bundle's ``preprocessing`` (a MONAI ``Compose`` on ``{"image": (H, W)}``) when run from
``inference.json``; ``mcolor infer`` passes none and gets :func:`mcolor.transforms.functional.network_input`,
the same computation without importing MONAI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mcolor.errors import RadiographReadError
from mcolor.inference.scan import FileRecord, quiet_dicom
from mcolor.io import read_radiograph
from mcolor.transforms.functional import letterbox, network_input


class InferenceDataset(Dataset):
    """The selected records as ``{"index", "image" | None, "display" | None, "error" | None}`` samples.

    Args:
        records: every scanned record; only ``selected`` ones are read.
        transform: the bundle's ``preprocessing`` (dict in, dict out); default: :func:`network_input` at
            ``image_size`` with ``letterbox``.
        display_size: also keep a larger copy (same geometry) for preview panels, so previews never read a
            file a second time.
    """

    def __init__(self, records: Sequence[FileRecord],
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None, image_size: int | None = None,
                 letterbox: str = "pad", display_size: int | None = None) -> None:
        if transform is None and image_size is None:
            raise ValueError("InferenceDataset needs a transform or an image_size")
        self.indices = [i for i, r in enumerate(records) if r.selected]
        self.paths = [records[i].path for i in self.indices]
        self.rels = [records[i].rel for i in self.indices]
        self.transform = transform
        self.image_size, self.mode = image_size, letterbox
        self.display_size = display_size

    def __len__(self) -> int:
        return len(self.indices)

    def prepare(self, image: Any) -> torch.Tensor:
        """A decoded ``(H, W)`` radiograph -> the network's ``(1, S, S)`` input."""
        if self.transform is None:
            return network_input(image, int(self.image_size), self.mode)  # type: ignore[arg-type]
        out = self.transform({"image": image})["image"]
        return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else torch.as_tensor(out)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample: dict[str, Any] = {"index": self.indices[i], "image": None, "display": None, "error": None}
        try:
            with quiet_dicom():  # decoder warnings may quote header values (PHI)
                image, _ = read_radiograph(self.paths[i])
        except RadiographReadError as exc:
            detail = exc.message.removeprefix(f"{exc.path}: ") if exc.path else exc.message
            sample["error"] = (exc.reason, detail.replace(str(self.paths[i]), self.rels[i]))
            return sample
        except Exception as exc:  # the reader promises typed errors; never let one file end the run
            sample["error"] = ("decode_failed", f"unexpected {type(exc).__name__} while reading")
            return sample
        sample["image"] = self.prepare(image)
        if self.display_size:
            sample["display"] = letterbox(torch.from_numpy(image)[None], self.display_size, self.mode)
        return sample


def tolerant_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack decoded images; keep failures as ``(index, reason, message)``. A batch may hold no image."""
    ok = [s for s in samples if s["error"] is None]
    return {
        "index": [s["index"] for s in ok],
        "failed": [(s["index"], *s["error"]) for s in samples if s["error"] is not None],
        "image": torch.stack([s["image"] for s in ok]) if ok else torch.empty(0),
        "display": torch.stack([s["display"] for s in ok]) if ok and ok[0]["display"] is not None else None,
    }


def make_loader(dataset: InferenceDataset, batch_size: int = 16, num_workers: int = 0) -> DataLoader:
    """Ordered loader; worker processes decode in parallel, and ``persistent_workers`` is off (one pass only)."""
    return DataLoader(dataset, batch_size=max(1, int(batch_size)), shuffle=False, num_workers=int(num_workers),
                      collate_fn=tolerant_collate, pin_memory=False)
