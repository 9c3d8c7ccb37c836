"""``mcolor bundle``: verify, pack and export-color for sharing bundles like a model zoo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mcolor bundle {verify,pack,export-color}``."""
    parser = subparsers.add_parser("bundle", help="verify, pack and share bundles",
                                   description="Verify, pack and share MONAI bundles (offline).")
    sub = parser.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)

    verify = sub.add_parser("verify", help="offline checks of a bundle folder or zip",
                            description="Metadata schema, layout, large_files.yml hashes, network in/out "
                                        "shapes, TorchScript and ONNX exports against the eager model.")
    verify.add_argument("bundle", type=Path, help="bundle folder or .zip")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--trust-bundle", action="store_true",
                        help="also run MONAI's verify_net_in_out on the config (executes its $ expressions)")
    verify.add_argument("--no-onnx", action="store_true", help="skip the ONNX export check")
    verify.set_defaults(func=_verify)

    pack = sub.add_parser("pack", help="zip a bundle (optionally with a trained model) per the MONAI spec")
    pack.add_argument("bundle_dir", type=Path, help="source bundle folder, e.g. bundles/cxr_colorization")
    pack.add_argument("--model", type=Path, help="trained checkpoint to ship as models/model.pt")
    pack.add_argument("--out", type=Path, help="zip path (default dist/NAME_vX.Y.Z.zip)")
    pack.add_argument("--url", default="", help="base URL where the weights will be published")
    pack.add_argument("--onnx", action="store_true", help="also ship models/model.onnx")
    pack.set_defaults(func=_pack)

    color = sub.add_parser("export-color", help="export the colorization module alone",
                           description="Write the colour module of a bundle or checkpoint, to start another "
                                       "model from it: train.json --color_init FILE [--freeze_color true].")
    color.add_argument("source", type=Path, help="bundle folder, bundle .zip or checkpoint .pt")
    color.add_argument("--out", type=Path, required=True, help="output file, e.g. color.pt")
    color.set_defaults(func=_export_color)


def _verify(args: argparse.Namespace) -> int:
    from mcolor.bundle.verify import verify_bundle

    report = verify_bundle(args.bundle, trust_bundle=args.trust_bundle, onnx=not args.no_onnx)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1


def _pack(args: argparse.Namespace) -> int:
    from mcolor.bundle.pack import pack_bundle

    out = pack_bundle(args.bundle_dir, args.out, model=args.model, url=args.url, onnx=args.onnx)
    print(out)
    return 0


def _export_color(args: argparse.Namespace) -> int:
    from mcolor.bundle.export import export_color

    print(export_color(args.source, args.out))
    return 0
