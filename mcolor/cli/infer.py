"""``mcolor infer INPUT_DIR --bundle BUNDLE --out OUT_DIR``: predictions for a folder of DICOM files.

Only argument parsing and the exit code live here; the work is :func:`mcolor.inference.runner.run_folder`.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """\
every file under INPUT_DIR (recursive; symlinked folders are not followed) ends as exactly one row of
OUT_DIR/predictions.csv and report.json: predicted, skipped (reason code + sentence) or error (reason).

selection (defaults; override with --rules FILE, JSON or YAML with the same keys):
  modalities [CR, DX]; image storage SOP classes only (not For Processing); single frame; MONOCHROME1/2;
  body_parts [CHEST] (absent: accepted, warning on the row); view_positions [PA, AP] (absent: accepted
  with a warning; LL/LATERAL skipped). PNG/JPEG/TIFF/MetaImage/NRRD/NIfTI have no DICOM header: skipped unless
  --allow-non-dicom. DICOMDIR, SR, SEG, RT, PDF and other non-image objects: skipped.
  rules keys: modalities, body_parts, view_positions (lists; [] = any), missing_body_part and
  missing_view_position (accept|warn|skip), sop_classes (image_storage or a list of UIDs),
  allow_for_processing, allow_non_dicom.

model: loaded once; the bundle's models/model.ts (TorchScript) runs when present and agrees with
models/model.pt, unless --eager (implied by --previews: Grad-CAM needs the eager network).

privacy: outputs and logs hold relative paths, UIDs and acquisition descriptors, never patient names,
IDs or birth dates; --keep-phi adds PatientID and StudyDate (and real patient modules in --sr reports)
for local use. INPUT_DIR is only read.

exit codes:
  0  the run completed (skipped and error files are results, counted in the summary line)
  2  usage error: bad arguments or rules file, missing INPUT_DIR, OUT_DIR not empty without --overwrite
  3  the bundle (or checkpoint) cannot be opened or its model cannot be loaded
  4  INPUT_DIR holds no readable file at all (no DICOM or image file found)

research software: NOT FOR CLINICAL USE.
"""

EXIT_OK, EXIT_USAGE, EXIT_BUNDLE, EXIT_NO_INPUT = 0, 2, 3, 4
#: Decoding workers pay off only with cores to spare: on 2 cores a worker competes with the forward
#: pass's threads and one run costs ~60% more CPU (docs/benchmarks.md), so 0 there, up to 4 beyond.
DEFAULT_WORKERS = min(4, max(0, (os.cpu_count() or 2) - 2))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _run(args: argparse.Namespace) -> int:
    from mcolor.errors import BundleError
    from mcolor.inference.rules import load_rules
    from mcolor.inference.runner import InferOptions, run_folder

    rules = load_rules(args.rules, allow_non_dicom=True if args.allow_non_dicom else None)
    options = InferOptions(
        threshold=args.threshold,
        sr=args.sr,
        previews=args.previews,
        keep_phi=args.keep_phi,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        overwrite=args.overwrite,
        eager=args.eager,
        rules=rules,
        progress=not args.no_progress,
    )
    try:
        result = run_folder(args.input_dir, args.bundle, args.out, options)
    except BundleError as exc:
        print(f"mcolor: error [{exc.reason}]: {exc}", file=sys.stderr)
        return EXIT_BUNDLE
    print(result.summary_line())
    if result.readable == 0:
        print(
            f"mcolor: error [no_readable_input]: no DICOM or image file found in {args.input_dir}",
            file=sys.stderr,
        )
        return EXIT_NO_INPUT
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``infer`` subcommand."""
    p = subparsers.add_parser(
        "infer",
        help="predict every chest radiograph in a DICOM folder (CSV/JSON, optional SR and previews)",
        description="Predict every frontal chest radiograph under INPUT_DIR with a bundle's model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input_dir", metavar="INPUT_DIR", help="folder scanned recursively (only read, never written)")
    p.add_argument(
        "--bundle",
        required=True,
        metavar="BUNDLE",
        help="bundle folder or .zip (its configs are not executed), or a model.pt checkpoint",
    )
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder (must be empty or absent)")
    p.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help="decision threshold for every output (default: the operating threshold stored in the model)",
    )
    p.add_argument("--sr", action="store_true", help="also write one DICOM SR per study into OUT_DIR/sr/")
    p.add_argument(
        "--previews",
        action="store_true",
        help="PNG panels (input, colorization output, Grad-CAM) + OUT_DIR/index.html; implies --eager",
    )
    p.add_argument(
        "--keep-phi",
        action="store_true",
        help="include PatientID and StudyDate in the outputs (local use only)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=_positive_int, default=16, metavar="B")
    p.add_argument(
        "--num-workers",
        type=_non_negative_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"DataLoader worker processes decoding images (0: in the main process; default {DEFAULT_WORKERS}, "
        "CPU count minus 2, at most 4)",
    )
    p.add_argument("--rules", default=None, metavar="RULES", help="selection rules file (.json or .yaml)")
    p.add_argument(
        "--allow-non-dicom",
        action="store_true",
        help="predict non-DICOM images too (PNG/JPEG/TIFF/MetaImage/NRRD/NIfTI): no DICOM header, no rule checked",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run's outputs in OUT_DIR (other files there are left alone)",
    )
    p.add_argument(
        "--eager",
        action="store_true",
        help="run the eager PyTorch network even when the bundle ships models/model.ts",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
