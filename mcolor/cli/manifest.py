"""``mcolor manifest ...``: build, validate, summarize and subsample data manifests.

Only argument parsing and printing live here; the work is done by :mod:`mcolor.data.manifests`,
:mod:`mcolor.data.builders` and :mod:`mcolor.data.subsample` (imported lazily so ``mcolor --help``
stays fast).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any


def _summary(manifest: Any) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in manifest.counts().items())
    return f"wrote {manifest.path} ({manifest.task}, {len(manifest.labels)} labels; {counts})"


def _validate(args: argparse.Namespace) -> int:
    from mcolor.data.manifests import validate_manifest

    issues = validate_manifest(args.manifest, check_files=not args.no_files, hash_content=args.hash)
    shown: Counter[str] = Counter()
    for issue in issues:
        shown[issue.code] += 1
        if shown[issue.code] <= args.limit:
            print(f"{args.manifest}:{issue.line}: {issue.severity} [{issue.code}] {issue.message}")
    for code, n in shown.items():
        if n > args.limit:
            print(f"... {n - args.limit} more [{code}] not shown (--limit)")
    errors = sum(i.severity == "error" for i in issues)
    warnings = len(issues) - errors
    print(f"{args.manifest}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors or (args.strict and warnings) else 0


def _info(args: argparse.Namespace) -> int:
    from mcolor.data.manifests import load_manifest

    m = load_manifest(args.manifest)
    print(f"{m.path}: {m.task}, labels {list(m.labels)}, outputs {m.num_outputs}")
    print(f"source: {m.source}\nlicense: {m.license}")
    for split, n in m.counts().items():
        print(f"{split}: {n}")
    return 0


def _medmnist(args: argparse.Namespace) -> int:
    from mcolor.data.builders import build_medmnist

    labels = args.labels.split(",") if args.labels else None
    print(_summary(build_medmnist(args.npz, args.out, args.test_fraction, args.seed, labels)))
    return 0


def _folders(args: argparse.Namespace) -> int:
    from mcolor.data.builders import build_folders

    manifest = build_folders(args.root, args.out, source=args.source, license=args.license,
                             val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
                             task=args.task, dedupe=not args.no_dedupe)
    builder = manifest.meta.get("builder", {})
    print(_summary(manifest))
    for split, info in builder.get("carved", {}).items():
        print(f"carved {split}: {info['groups']} patient groups ({info['fraction']:g} of train, seed {args.seed})")
    if builder.get("identical_images"):
        print(f"{builder['identical_images']} pixel-identical images joined to the group of their first copy")
    return 0


def _chexpert(args: argparse.Namespace) -> int:
    from mcolor.data.builders.chexpert import ALL_FINDINGS, COMPETITION, build_chexpert

    manifest = build_chexpert(
        args.csv,
        args.root,
        args.out,
        uncertain=args.uncertain,
        frontal_only=args.frontal_only,
        val_fraction=args.val_fraction,
        seed=args.seed,
        valid_as=args.valid_as,
        findings=ALL_FINDINGS if args.findings == "all" else COMPETITION,
    )
    print(_summary(manifest))
    return 0


def _nih(args: argparse.Namespace) -> int:
    from mcolor.data.builders import build_nih

    manifest = build_nih(
        args.data_entry,
        args.train_val_list,
        args.test_list,
        args.root,
        args.out,
        args.val_fraction,
        args.seed,
    )
    print(_summary(manifest))
    return 0


def _subsample(args: argparse.Namespace) -> int:
    from mcolor.data.subsample import write_subsample

    group = None if args.group.lower() == "none" else args.group
    manifest = write_subsample(
        args.manifest, args.out, args.fraction, args.seed, stratify=args.stratify == "label", group=group
    )
    info = manifest.meta["subsample"]
    print(f"{_summary(manifest)}; train groups {info['train_groups']}/{info['parent_train_groups']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``manifest`` and its sub-subcommands to the top-level ``mcolor`` parser."""
    parser = subparsers.add_parser("manifest", help="build, validate and subsample data manifests")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
    sub = parser.add_subparsers(dest="manifest_command", metavar="ACTION")

    p = sub.add_parser("validate", help="list every problem in a manifest; exit 1 on errors")
    p.add_argument("manifest")
    p.add_argument("--hash", action="store_true", help="also find identical image bytes across splits (slow)")
    p.add_argument("--no-files", action="store_true", help="do not check that image files exist")
    p.add_argument("--strict", action="store_true", help="warnings also make the exit code 1")
    p.add_argument("--limit", type=int, default=20, help="print at most this many issues per code")
    p.set_defaults(func=_validate)

    p = sub.add_parser("info", help="print task, labels, source, licence and counts")
    p.add_argument("manifest")
    p.set_defaults(func=_info)

    p = sub.add_parser("medmnist", help="MedMNIST .npz -> PNGs + manifest")
    p.add_argument("npz")
    p.add_argument("--out", required=True, help="output folder (PNGs + manifest.csv)")
    p.add_argument(
        "--test-fraction", type=float, default=0.0, help="carve a test split from train (no test key)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", help="comma-separated label names for unknown MedMNIST files")
    p.set_defaults(func=_medmnist)

    p = sub.add_parser("folders", help="class-per-folder tree (Kermany layout) -> manifest")
    p.add_argument("root", help="folder holding train/ and optionally val/ and test/ (official splits are kept)")
    p.add_argument("--out", required=True)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="patients carved from train into val when ROOT has no val/ (default 0.1; 0 = none)")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="patients carved from train into test when ROOT has no test/ (default 0 = none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the carving")
    p.add_argument("--task", choices=["folders", "pneumonia", "subtype"], default="folders",
                   help="folders: classes = sub-folders; pneumonia: binary NORMAL/PNEUMONIA; "
                        "subtype: NORMAL/BACTERIAL/VIRAL from Kermany file names")
    p.add_argument("--no-dedupe", action="store_true",
                   help="do not decode images to join pixel-identical ones into one group")
    p.add_argument("--source", help="dataset source recorded in the sidecar")
    p.add_argument("--license", help="dataset licence recorded in the sidecar")
    p.set_defaults(func=_folders)

    p = sub.add_parser("chexpert", help="CheXpert train.csv/valid.csv -> multilabel manifest")
    p.add_argument("csv", nargs="+")
    p.add_argument("--root", required=True, help="folder containing CheXpert-v1.0-small/")
    p.add_argument("--out", required=True)
    p.add_argument("--uncertain", choices=["u-ones", "u-zeros", "ignore"], default="u-ones")
    p.add_argument("--frontal-only", action="store_true")
    p.add_argument("--val-fraction", type=float, default=None, help="patients carved from train into val")
    p.add_argument("--valid-as", choices=["test", "val"], default="test", help="split given to valid.csv")
    p.add_argument("--findings", choices=["competition", "all"], default="competition")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_chexpert)

    p = sub.add_parser("nih", help="NIH ChestX-ray14 Data_Entry CSV + split lists -> manifest")
    p.add_argument("data_entry")
    p.add_argument("--train-val-list", required=True)
    p.add_argument("--test-list", required=True)
    p.add_argument("--root", required=True, help="images folder (or the folder of images_NNN/)")
    p.add_argument("--out", required=True)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_nih)

    p = sub.add_parser("subsample", help="nested, stratified, patient-grouped subset of the train split")
    p.add_argument("manifest")
    p.add_argument("--fraction", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stratify", choices=["label", "none"], default="label")
    p.add_argument("--group", default="auto",
                   help="grouping column, 'auto' (group_id when present, else patient_id) or 'none'")
    p.add_argument("--out", required=True, help="output CSV (sidecar written beside it)")
    p.set_defaults(func=_subsample)
