"""``mcolor bundle``: path, init, verify, pack, convert and export-color for sharing bundles like a model zoo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mcolor bundle {path,init,verify,pack,convert,export-color}``."""
    parser = subparsers.add_parser("bundle", help="verify, pack and share bundles",
                                   description="Verify, pack and share MONAI bundles (offline).")
    sub = parser.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)

    path = sub.add_parser("path", help="print the folder of the bundle installed with mcolor")
    path.add_argument("name", nargs="?", default="cxr_colorization")
    path.set_defaults(func=_path)

    init = sub.add_parser("init", help="copy the installed bundle into a new folder, to train it there",
                          description="Copy configs, docs and licence (no weights) of an installed bundle into DEST; "
                                      "then: cd DEST && python -m monai.bundle run --config_file configs/train.json")
    init.add_argument("dest", type=Path)
    init.add_argument("--name", default="cxr_colorization", help="installed bundle to copy")
    init.add_argument("--exist-ok", action="store_true", help="leave DEST as it is when it already is a bundle")
    init.set_defaults(func=_init)

    verify = sub.add_parser("verify", help="offline checks of a bundle folder or zip (the model zoo's and more)",
                            description="The MONAI model zoo's checks (metadata schema, required files, "
                                        "verify_net_in_out, ckpt_export) offline, plus large_files.yml hashes and "
                                        "TorchScript/ONNX exports compared with the eager model.")
    verify.add_argument("bundle", type=Path, help="bundle folder or .zip")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--trust-bundle", action="store_true",
                        help="run MONAI's own verify_net_in_out and ckpt_export on inference.json, as the zoo does "
                             "(executes the configs' $ expressions)")
    verify.add_argument("--no-onnx", action="store_true", help="skip the ONNX export check")
    verify.set_defaults(func=_verify)

    pack = sub.add_parser("pack", help="zip a trained bundle per the MONAI spec (model.ts and hashes added)")
    pack.add_argument("bundle_dir", type=Path, help="trained bundle folder, e.g. bundles/cxr_colorization")
    pack.add_argument("--out", type=Path, help="zip path (default dist/NAME_vX.Y.Z.zip)")
    pack.add_argument("--url", default="", help="base URL where the weights will be published")
    pack.add_argument("--onnx", action="store_true", help="also ship models/model.onnx")
    pack.set_defaults(func=_pack)

    convert = sub.add_parser("convert", help="turn an mcolor 0.1 checkpoint into a trained bundle folder",
                             description="mcolor 0.1 saved model, spec and threshold nested in one .pt; write them "
                                         "as a bundle (models/model.pt state dict + configs/metadata.json).")
    convert.add_argument("checkpoint", type=Path, help="the old model.pt")
    convert.add_argument("--out", type=Path, required=True, help="new bundle folder (must not exist)")
    convert.set_defaults(func=_convert)

    color = sub.add_parser("export-color", help="export the colorization module alone",
                           description="Write the colour module of a bundle or checkpoint, to start another "
                                       "model from it: train.json --color_init FILE [--freeze_color true].")
    color.add_argument("source", type=Path, help="trained bundle folder or .zip")
    color.add_argument("--out", type=Path, required=True, help="output file, e.g. color.pt")
    color.set_defaults(func=_export_color)


def _verify(args: argparse.Namespace) -> int:
    from mcolor.bundle.verify import verify_bundle

    report = verify_bundle(args.bundle, trust_bundle=args.trust_bundle, onnx=not args.no_onnx)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1


def _pack(args: argparse.Namespace) -> int:
    from mcolor.bundle.pack import pack_bundle

    print(pack_bundle(args.bundle_dir, args.out, url=args.url, onnx=args.onnx))
    return 0


def _path(args: argparse.Namespace) -> int:
    from mcolor.bundle.installed import bundle_path

    print(bundle_path(args.name))
    return 0


def _init(args: argparse.Namespace) -> int:
    from mcolor.bundle.installed import init_bundle

    print(init_bundle(args.dest, args.name, keep_existing=args.exist_ok))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from mcolor.bundle.installed import convert_checkpoint

    print(convert_checkpoint(args.checkpoint, args.out))
    return 0


def _export_color(args: argparse.Namespace) -> int:
    from mcolor.bundle.export import export_color

    print(export_color(args.source, args.out))
    return 0
