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

model: loaded once from the bundle's configs/metadata.json + models/; --backend auto runs models/model.ts
(TorchScript: no timm or MONAI import, fast start) when it was exported from models/model.pt, else the eager
network; --backend onnx runs models/model.onnx with ONNX Runtime (the onnx extra). --previews also builds the
eager network (Grad-CAM needs it). A checkpoint of mcolor 0.1 is refused: convert it with
`mcolor bundle convert`.

MONAI Deploy conventions: -i/--input, -o/--output and -m/--model are aliases of INPUT_DIR, --out and
--bundle, and the environment variables HOLOSCAN_INPUT_PATH, HOLOSCAN_OUTPUT_PATH and HOLOSCAN_MODEL_PATH
fill whichever of them is not given (arguments win over variables).

privacy: predictions.csv, report.json, index.html, previews and logs hold relative paths, UIDs and
acquisition descriptors, never patient names, IDs or birth dates; --keep-phi adds PatientID and StudyDate
to them for local use. INPUT_DIR is only read.

--sr reports (OUT_DIR/sr/<StudyInstanceUID>.dcm) are written into the source study, for the PACS it came
from, so each ALWAYS carries that study's patient and study identity, with or without --keep-phi:
PatientName, PatientID (+ issuer), PatientBirthDate, PatientSex, StudyInstanceUID, StudyDate, StudyTime,
AccessionNumber (+ issuer), ReferringPhysicianName, StudyID, copied from the source headers (no equipment,
institution or other attribute). Handle OUT_DIR/sr like the source images. A study whose predicted files
disagree on any of these (two patients under one StudyInstanceUID) gets no SR: its rows carry an
sr_not_written warning naming the attributes, never their values.

optional extras: --sr needs mcolor[sr] (highdicom), --previews mcolor[plots] (matplotlib), --backend onnx
mcolor[onnx]; without it the run stops before reading any file (exit code 2, error [missing_extra] with
the pip install command).

exit codes:
  0  the run completed (skipped and error files are results, counted in the summary line)
  2  usage error: bad arguments or rules file, missing INPUT_DIR, OUT_DIR not empty without --overwrite,
     an option's extra not installed
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

    input_dir = args.input_dir or args.input or os.environ.get("HOLOSCAN_INPUT_PATH")
    out_dir = args.out or os.environ.get("HOLOSCAN_OUTPUT_PATH")
    bundle = args.bundle or os.environ.get("HOLOSCAN_MODEL_PATH")
    missing = [name for name, value in (("INPUT_DIR (or -i, HOLOSCAN_INPUT_PATH)", input_dir),
                                        ("--bundle (or -m, HOLOSCAN_MODEL_PATH)", bundle),
                                        ("--out (or -o, HOLOSCAN_OUTPUT_PATH)", out_dir)) if not value]
    if missing:
        print(f"mcolor infer: error [usage]: missing {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    rules = load_rules(args.rules, allow_non_dicom=True if args.allow_non_dicom else None)
    options = InferOptions(
        threshold=args.threshold,
        sr=args.sr,
        previews=args.previews,
        keep_phi=args.keep_phi,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        decode_threads=args.decode_threads,
        overwrite=args.overwrite,
        backend="eager" if args.eager else args.backend,
        rules=rules,
        progress=not args.no_progress,
    )
    try:
        result = run_folder(input_dir, bundle, out_dir, options)
    except BundleError as exc:
        print(f"mcolor: error [{exc.reason}]: {exc}", file=sys.stderr)
        return EXIT_BUNDLE
    print(result.summary_line())
    if result.readable == 0:
        print(
            f"mcolor: error [no_readable_input]: no DICOM or image file found in {input_dir}",
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
    p.add_argument("input_dir", metavar="INPUT_DIR", nargs="?",
                   help="folder scanned recursively (only read, never written); or -i / HOLOSCAN_INPUT_PATH")
    p.add_argument("-i", "--input", metavar="INPUT_DIR", help="the input folder (MONAI Deploy style)")
    p.add_argument("--bundle", "-m", "--model", dest="bundle", metavar="BUNDLE",
                   help="trained bundle folder or .zip (its configs are not executed); or HOLOSCAN_MODEL_PATH")
    p.add_argument("--out", "-o", "--output", dest="out", metavar="OUT_DIR",
                   help="output folder (must be empty or absent); or HOLOSCAN_OUTPUT_PATH")
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
        help="PNG panels (input, colorization output, Grad-CAM) + OUT_DIR/index.html (builds the eager network)",
    )
    p.add_argument(
        "--keep-phi",
        action="store_true",
        help="include PatientID and StudyDate in predictions.csv, report.json and index.html (local use only; "
        "--sr reports carry the study's identity either way)",
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
    p.add_argument("--backend", choices=["auto", "torchscript", "eager", "onnx"], default="auto",
                   help="network backend (default auto: TorchScript when current, else eager)")
    p.add_argument("--eager", action="store_true", help="same as --backend eager")
    p.add_argument("--decode-threads", type=_non_negative_int, default=1, metavar="T",
                   help="threads decoding the next batches while the network runs (0: decode in line; "
                        "ignored with --num-workers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
