"""``mcolor card BUNDLE --dataset CSV --out DIR``: model-card figures of a trained binary bundle."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "card", help="model-card figures of a trained bundle on a held-out split (bootstrap CIs, calibration)",
        description="Evaluates the bundle with its evaluate.json, then writes card.json (AUC, accuracy, sensitivity, "
                    "specificity at the stored threshold, ECE, subgroup sensitivities, each with a 95 % interval "
                    "from a bootstrap over patients), roc.png, confusion.png, reliability.png and colorized.png.")
    p.add_argument("bundle", help="trained bundle folder")
    p.add_argument("--dataset", required=True, help="manifest CSV holding the evaluated split")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test")
    p.add_argument("--subgroup", default="subtype", help="manifest column for per-subgroup sensitivity")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mcolor.experiments.card import card_markdown, model_card

    card = model_card(args.bundle, args.dataset, args.out, args.split, args.subgroup, args.bootstrap)
    print(card_markdown(card))
    return 0
