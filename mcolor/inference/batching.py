"""Batched prediction over the selected files: dataset, failure-tolerant collate, loader and evaluator.

Decoding runs in DataLoader workers (``num_workers > 0``) through :func:`mcolor.io.read_radiograph`, the
reader training used, then the model's letterbox. A file that fails to decode must become an ``error``
row, not end the run, so a sample carries either an image or its error, and :func:`tolerant_collate`
stacks the images and passes the failures alongside. The engine is MONAI's ``SupervisedEvaluator`` for
both ``mcolor infer`` and the bundle's ``inference.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator
from monai.inferers import SimpleInferer
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mcolor.errors import RadiographReadError
from mcolor.inference.rules import as_flag
from mcolor.inference.scan import FileRecord, quiet_dicom
from mcolor.io import read_radiograph
from mcolor.transforms import Letterbox


class InferenceDataset(Dataset):
    """The selected records as ``{"index", "image" | None, "display" | None, "error" | None}`` samples.

    ``index`` points back into the full record list. ``display_size`` adds a larger letterboxed copy of
    the same image for preview panels, so previews never read a file a second time.
    """

    def __init__(
        self,
        records: Sequence[FileRecord],
        image_size: int,
        letterbox: str = "pad",
        display_size: int | None = None,
    ) -> None:
        self.indices = [i for i, r in enumerate(records) if r.selected]
        self.paths = [records[i].path for i in self.indices]
        self.rels = [records[i].rel for i in self.indices]
        self.letterbox = Letterbox(image_size, mode=letterbox)
        self.display = Letterbox(display_size, mode=letterbox) if display_size else None

    def __len__(self) -> int:
        return len(self.indices)

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
        tensor = torch.from_numpy(image).unsqueeze(0)
        sample["image"] = self.letterbox(tensor)
        if self.display is not None:
            sample["display"] = self.display(tensor)
        return sample


def tolerant_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack decoded images; keep failures as ``(index, reason, message)``. A batch may hold no image."""
    ok = [s for s in samples if s["error"] is None]
    batch: dict[str, Any] = {
        "index": [s["index"] for s in ok],
        "failed": [(s["index"], *s["error"]) for s in samples if s["error"] is not None],
        "image": torch.stack([s["image"] for s in ok]) if ok else torch.empty(0),
        "display": torch.stack([s["display"] for s in ok]) if ok and ok[0]["display"] is not None else None,
    }
    return batch


def make_loader(dataset: InferenceDataset, batch_size: int = 16, num_workers: int = 0) -> DataLoader:
    """Ordered loader; workers decode in parallel, and ``persistent_workers`` is off (one pass only)."""
    return DataLoader(
        dataset,
        batch_size=max(1, int(batch_size)),
        shuffle=False,
        num_workers=int(num_workers),
        collate_fn=tolerant_collate,
        pin_memory=False,
    )


def prepare_batch(
    batchdata: dict[str, Any], device: torch.device | None = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, None]:
    """``prepare_batch`` for :func:`tolerant_collate` batches: the image tensor, no target."""
    return batchdata["image"].to(device=device, non_blocking=non_blocking, **kwargs), None


class BatchInferer(SimpleInferer):
    """``SimpleInferer`` that answers an all-failed (empty) batch without calling the network."""

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.num_outputs = num_outputs

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if inputs.numel() == 0:
            return torch.zeros(0, self.num_outputs)
        return super().__call__(inputs, network, *args, **kwargs)


class ProgressHandler:
    """A tqdm bar counting files (decoded or failed), not batches; silent when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "predict") -> None:
        self.total, self.enabled, self.desc = total, as_flag(enabled), desc
        self.bar: Any = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._step)
        engine.add_event_handler(Events.COMPLETED, self._close)

    def _start(self, _: Engine) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="img", disable=not self.enabled or None, leave=False)

    def _step(self, engine: Engine) -> None:
        batch = engine.state.batch
        self.bar.update(len(batch["index"]) + len(batch["failed"]))

    def _close(self, _: Engine) -> None:
        self.bar.close()


def make_evaluator(
    network: torch.nn.Module,
    val_data_loader: DataLoader,
    device: torch.device,
    inferer: BatchInferer,
    val_handlers: Sequence[Any] = (),
    amp: bool = False,
) -> SupervisedEvaluator:
    """The one prediction engine (CLI and bundle): no grad, eval mode, batches not decollated.

    Argument names are ``SupervisedEvaluator``'s, so MONAI's bundle property checks
    (``evaluator::val_handlers`` -> ``@handlers``) read the config as they would the plain engine.
    """
    return SupervisedEvaluator(
        device=device,
        val_data_loader=val_data_loader,
        network=network,
        inferer=inferer,
        prepare_batch=prepare_batch,
        val_handlers=list(val_handlers),
        amp=amp,
        decollate=False,
    )
