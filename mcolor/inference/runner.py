"""``mcolor infer`` as a library call: scan a folder, predict the selected files, write the outputs.

The run always completes: each file ends ``predicted``, ``skipped`` or ``error`` and the outputs are
written. Only usage problems (bad options, a non-empty output folder without ``overwrite``) and an
unusable model raise, before any file is read. The input folder is only ever read.

Nothing on this path imports the training stack (ignite, MONAI handlers, mlflow) or, with the bundle's
TorchScript model, MONAI and timm at all; previews (Grad-CAM: MONAI, matplotlib) and SR (highdicom) are
imported only when asked for. Those two need optional extras (``plots``, ``sr``): a missing one is a usage
error (:class:`~mcolor.errors.MissingExtraError`, exit code 2) raised before any file is read.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mcolor.errors import ConfigError, McolorError
from mcolor.extras import require
from mcolor.inference.dataset import InferenceDataset
from mcolor.inference.engine import predict
from mcolor.inference.models import InferenceModel, load_inference_model
from mcolor.inference.predictions import PredictionWriter
from mcolor.inference.rules import SelectionRules
from mcolor.inference.scan import FileRecord, quiet_dicom, scan_folder

log = logging.getLogger(__name__)

#: What a run writes into OUT_DIR; ``overwrite`` removes exactly these (never other files).
OWN_OUTPUTS = ("predictions.csv", "report.json", "index.html", "previews", "sr")


@dataclass
class InferOptions:
    """Options of one run (the CLI flags). ``backend`` picks the network (see :mod:`mcolor.inference.models`);
    previews need the eager network for Grad-CAM but the predictions keep the chosen backend."""

    threshold: float | None = None
    sr: bool = False
    previews: bool = False
    keep_phi: bool = False
    device: str = "auto"
    batch_size: int = 16
    num_workers: int = 0
    decode_threads: int = 1
    overwrite: bool = False
    backend: str = "auto"
    rules: SelectionRules = field(default_factory=SelectionRules)
    progress: bool = True
    preview_size: int = 256


@dataclass
class RunResult:
    """What a run did: status counts, how many files were recognised as images, where outputs went."""

    counts: dict[str, int]
    readable: int
    out_dir: Path
    records: list[FileRecord]
    model: InferenceModel

    def summary_line(self) -> str:
        c = self.counts
        return (
            f"mcolor infer: {sum(c.values())} files: {c['predicted']} predicted, {c['skipped']} skipped, "
            f"{c['error']} errors -> {self.out_dir}"
        )


def check_output(out_dir: str | Path, input_dir: Path, overwrite: bool) -> Path:
    """Refuse an output folder inside the input (never written) or non-empty without ``overwrite``."""
    out = Path(out_dir).expanduser().resolve()
    inp = input_dir.resolve()
    if out.is_relative_to(inp) or inp.is_relative_to(out):
        raise ConfigError(
            f"--out must not be inside the input folder (or contain it): {out}",
            reason="output_in_input",
            path=out,
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out exists and is not a folder: {out}", reason="output_not_a_folder", path=out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise McolorError(
            f"output folder {out} is not empty; pass --overwrite to replace a previous run's outputs",
            reason="output_exists",
            path=out,
        )
    return out


def clear_outputs(out: Path) -> None:
    """Remove a previous run's own outputs (:data:`OWN_OUTPUTS`), so no stale preview or SR survives."""
    for name in OWN_OUTPUTS:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def run_folder(
    input_dir: str | Path, bundle: str | Path, out_dir: str | Path, options: InferOptions | None = None
) -> RunResult:
    """Infer on every file under ``input_dir`` with the model of ``bundle``; write outputs to ``out_dir``.

    Raises:
        ConfigError / McolorError: bad input folder, output folder refused, an extra that ``sr`` or
            ``previews`` needs is not installed (usage errors).
        BundleError: the bundle or its model cannot be opened.
    """
    options = options or InferOptions()
    root = Path(input_dir).expanduser()
    if not root.is_dir():
        raise ConfigError(f"input folder not found or not a folder: {root}", reason="missing_input", path=root)
    out = check_output(out_dir, root, options.overwrite)
    if options.sr:
        require("sr", "--sr (DICOM Structured Reports)")
    if options.previews:
        require("plots", "--previews (preview panels)")
    model = load_inference_model(bundle, options.device, options.threshold, backend=options.backend)
    if options.overwrite and out.is_dir():
        clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_dicom():
        records = scan_folder(root, options.rules, options.keep_phi, options.progress)
        dataset = InferenceDataset(records, image_size=model.image_size, letterbox=model.letterbox,
                                   display_size=options.preview_size if options.previews else None)
        writer = PredictionWriter(model, records, out, options.rules.to_dict(), options.keep_phi)
        callbacks: list = [writer]
        if options.previews:
            from mcolor.inference.previews import PreviewWriter

            callbacks.append(PreviewWriter(model, records, out))
        if len(dataset):
            predict(model, dataset, callbacks, batch_size=options.batch_size, num_workers=options.num_workers,
                    decode_threads=options.decode_threads, progress=options.progress)
        if options.sr:  # before the tables: a study that gets no SR says so on its rows
            from mcolor.inference.sr import write_reports

            write_reports(out, records, model)
        counts = writer.finish()
        log.info("%d files: %d predicted, %d skipped, %d errors -> %s", sum(counts.values()), counts["predicted"],
                 counts["skipped"], counts["error"], out / "predictions.csv")
        if options.previews:
            from mcolor.inference.report_html import write_index

            write_index(out, records, model, options.keep_phi)
    return RunResult(counts, sum(r.readable for r in records), out, records, model)
