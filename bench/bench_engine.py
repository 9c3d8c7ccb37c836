"""Training throughput of the bundle's trainer against a plain PyTorch loop (CPU), in the same run.

The trainer is built from ``bundles/cxr_colorization/configs/train.json`` itself (``monai.bundle.
ConfigParser``; a few ids overridden: dataset, sizes, epochs, output folder, device) and run with every
handler the bundle attaches (transfer schedule, LR schedule, NaN guard, LR logger, validation, stats,
TensorBoard, progress bar) plus the bundle's ``initialize`` steps. The plain loop uses the same data
iterable (the config's very ``DataLoader`` object, or the same list of ready batches), a fresh copy of the
network with the same initial weights, the same loss and an optimiser built by the same
``mcolor.engines.build_optimizer`` call::

    for batch in data:
        opt.zero_grad(); loss = loss_fn(net(batch["image"]), batch["label"]); loss.backward(); opt.step()

Trainer and plain loop alternate one iteration at a time (ABAB...): a handler registered after all of
the bundle's runs one plain step at each ``ITERATION_COMPLETED``, so load from other processes hits both
alike. A trainer iteration is timed from the end of that handler to its next call: batch fetching,
``prepare_batch``, forward/backward/step, every bundle handler at every iteration event, and, for an
epoch's first iteration, the ``EPOCH_STARTED`` handlers (the transfer schedule). Epoch-end work
(validation, epoch checkpoints, epoch logs) is not timed: it is not training throughput. The first
``--warmup`` epochs are not timed. Reported per mode: images/s of each over all timed iterations and
their ratio, the median over paired iterations of trainer/plain (the headline figure: robust to drift),
the same per CPU-second of this process (``time.process_time``: other load on a shared machine disturbs it
much less than wall time when ``--threads 1``), and the trainer's extra CPU time per iteration. With a
tiny model (``--image-size 32``) that last figure is the engine's own cost, and it bounds the ratio for
any model: ratio >= step / (step + overhead).

Modes: ``loader`` (the config's DataLoader: decode + letterbox + RandAffine every epoch, ``num_workers``
from the config), ``preloaded`` (the same DataLoader's batches materialised once in memory, so only the
engine differs) and ``preloaded-decollate`` (as ``preloaded`` with ``decollate=true``, which the bundle does
not use: MONAI issue 8541). The bundle's loss readers (``NonFiniteLossGuard``, ``loss_value``) expect the
batch-level output dict and fail on a decollated output, so in that mode only they are swapped for
equivalents that read the first item.

    python bench/bench_engine.py                                  # defaults: a few minutes on 2 idle cores
    python bench/bench_engine.py --rounds 3 --modes preloaded --out /tmp/engine.md
    python bench/bench_engine.py --threads 1 --image-size 32      # the engine's own per-iteration cost
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser

from mcolor.data.synthetic import ensure_synthetic_dataset
from mcolor.engines import build_optimizer
from mcolor.errors import TrainingError
from mcolor.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "bundles" / "cxr_colorization" / "configs" / "train.json"
MODES = ("loader", "preloaded", "preloaded-decollate")


def make_parser(args: argparse.Namespace, manifest: Path, out_dir: Path, epochs: int,
                extra: dict[str, Any] | None = None,
                bench_globals: dict[str, Any] | None = None) -> ConfigParser:
    """The bundle's train.json with the benchmark's overrides (as ``--key value`` would set them)."""
    parser = ConfigParser(globals=bench_globals)
    parser.read_config(str(args.config))
    overrides: dict[str, Any] = {
        "dataset": str(manifest),
        "output_dir": str(out_dir),
        "max_epochs": epochs,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "color_module": args.color_module,
        "backbone": args.backbone,
        "schedule": args.schedule,
        "device#device": "cpu",
    }
    if args.pretrained is not None:
        overrides["pretrained"] = args.pretrained
    overrides.update(extra or {})
    for key, value in overrides.items():
        parser[key] = value
    return parser


class FirstItemLossGuard:
    """``NonFiniteLossGuard``'s check for decollated output (a list of per-sample dicts).

    Only for the ``decollate=true`` contrast: the bundle's guard reads ``state.output["loss"]`` and fails
    on a decollated output, which the bundle never produces (it sets ``decollate: false``).
    """

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not math.isfinite(first_loss(engine.state.output)):
            raise TrainingError(f"non-finite loss at iteration {engine.state.iteration}",
                                reason="non_finite_loss")


def first_loss(output: Any) -> float:
    """The batch loss from a batch-level or a decollated output."""
    out = output[0] if isinstance(output, list) else output
    loss = out["loss"] if isinstance(out, dict) else out
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def images_in(data: Iterable[dict[str, Any]]) -> int:
    return sum(int(b["image"].shape[0]) for b in data)


class PlainLoop:
    """The reference loop, one step at a time: a deep copy of the trainer's network, its own optimiser.

    It keeps its own iterator over the same data object and starts a new one (as ``for batch in data``
    would) when that one is exhausted.
    """

    def __init__(self, parser: ConfigParser, network: torch.nn.Module, loss_fn: torch.nn.Module,
                 data: Iterable[dict[str, Any]]) -> None:
        self.net = copy.deepcopy(network)
        self.loss_fn = copy.deepcopy(loss_fn)
        self.opt = build_optimizer(self.net, name=parser.get_parsed_content("optimizer_name"),
                                   lr=parser.get_parsed_content("lr"),
                                   weight_decay=parser.get_parsed_content("weight_decay"))
        self.source = network
        self.data = data
        self.it: Iterator[dict[str, Any]] = iter(())

    def sync_trainable(self) -> None:
        """Same trainable set and train/eval modes as the trainer's network (the schedule may freeze)."""
        for p, q in zip(self.net.parameters(), self.source.parameters(), strict=True):
            p.requires_grad_(q.requires_grad)
        self.net.train()

    def step(self) -> int:
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.data)
            batch = next(self.it)
        x, y = batch["image"], batch["label"]
        self.opt.zero_grad()
        loss = self.loss_fn(self.net(x), y)
        loss.backward()
        self.opt.step()
        return int(x.shape[0])


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_mode(mode: str, args: argparse.Namespace, manifest: Path, work: Path,
             log: Callable[[str], None]) -> dict[str, Any]:
    epochs = args.warmup + args.rounds
    out_dir = work / mode
    extra: dict[str, Any] = {}
    bench_globals: dict[str, Any] | None = None
    if mode.startswith("preloaded"):
        # Materialise the config's own DataLoader once (same transforms, same batch size).
        probe = make_parser(args, manifest, work / "probe", epochs)
        loader = probe.get_parsed_content("train#dataloader")
        batches = [b for b in loader]
        bench_globals = {"bench_batches": batches}
        extra["train#trainer#train_data_loader"] = "$bench_batches"
        extra["epoch_length"] = len(batches)
    if mode.endswith("decollate"):
        # The bundle's loss readers expect the batch-level output dict; with decollate=true the output is
        # a list of per-sample dicts, so the same readers are pointed at its first item.
        extra["train#trainer#decollate"] = True
        raw = ConfigParser()
        raw.read_config(str(args.config))
        for i, handler in enumerate(raw["train#handlers"]):
            if not isinstance(handler, dict):
                continue
            if str(handler.get("_target_", "")).endswith("NonFiniteLossGuard"):
                extra[f"train#handlers#{i}"] = "$bench_guard"
            elif "output_transform" in handler:
                extra[f"train#handlers#{i}#output_transform"] = "$bench_first_loss"
        bench_globals = {**(bench_globals or {}), "bench_guard": FirstItemLossGuard(),
                         "bench_first_loss": first_loss}
    parser = make_parser(args, manifest, out_dir, epochs, extra, bench_globals)
    trainer = parser.get_parsed_content("train#trainer")
    parser.get_parsed_content("initialize")  # determinism, early-stop link, resume + epoch checkpoints
    network = parser.get_parsed_content("network")
    data = trainer.data_loader
    plain = PlainLoop(parser, network, parser.get_parsed_content("loss"), data)

    # Per timed iteration: (trainer wall, trainer cpu, plain wall, plain cpu, images).
    rec: dict[str, Any] = {"pairs": [], "iters": trainer.state.epoch_length}
    mark: dict[str, tuple[float, float] | None] = {"t": None}

    def after_iteration(engine: Engine) -> None:  # registered last: runs after every bundle handler
        start = mark["t"]
        wall, cpu = now()
        plain_start = now()
        n = plain.step()
        plain_end = now()
        if engine.state.epoch > args.warmup and start is not None:
            rec["pairs"].append((wall - start[0], cpu - start[1], plain_end[0] - plain_start[0],
                                 plain_end[1] - plain_start[1], n))
        last = engine.state.iteration % engine.state.epoch_length == 0
        mark["t"] = None if last else now()  # the epoch-end handlers (validation, ...) are not timed

    def epoch_started(engine: Engine) -> None:  # registered last: the schedule has already run
        plain.sync_trainable()

    def epoch_completed(engine: Engine) -> None:  # registered last: after validation and checkpoints
        pairs = rec["pairs"][-rec["iters"]:] if engine.state.epoch > args.warmup else []
        if pairs:
            n = sum(q[4] for q in pairs)
            log(f"{mode} epoch {engine.state.epoch}: trainer {n / sum(q[0] for q in pairs):.1f} img/s, "
                f"plain {n / sum(q[2] for q in pairs):.1f} img/s")
        else:
            log(f"{mode} epoch {engine.state.epoch}: warm-up")
        mark["t"] = now()

    trainer.add_event_handler(Events.EPOCH_STARTED, epoch_started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, after_iteration)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, epoch_completed)
    trainer.run()
    return rec


def summarise(mode: str, rec: dict[str, Any]) -> list[str]:
    pairs = rec["pairs"]
    n = sum(q[4] for q in pairs)
    tr, pl = n / sum(q[0] for q in pairs), n / sum(q[2] for q in pairs)
    ratio = statistics.median(q[2] / q[0] for q in pairs)
    cpu_ratio = statistics.median(q[3] / q[1] for q in pairs)
    extra_ms = statistics.median((q[1] - q[3]) * 1e3 for q in pairs)
    plain_ms = statistics.median(q[3] * 1e3 for q in pairs)
    return [f"`{mode}`", f"{len(pairs)} x {pairs[0][4]}", f"{tr:.1f}", f"{pl:.1f}", f"{tr / pl:.3f}x",
            f"**{ratio:.3f}x**", f"{cpu_ratio:.3f}x", f"{plain_ms:.0f}", f"{extra_ms:+.1f}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--rounds", type=int, default=4, help="timed epochs per mode")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--batch-size", type=int, default=16, help="bundle default: 16")
    p.add_argument("--image-size", type=int, default=128, help="bundle default: 128")
    p.add_argument("--color-module", default="coloru", help="bundle default: coloru")
    p.add_argument("--backbone", default="efficientnet_lite0", help="bundle default: efficientnet_lite0")
    p.add_argument("--schedule", default="all",
                   help="transfer schedule; 'all' so that every timed epoch trains the whole network")
    p.add_argument("--pretrained", default=None, help="default: the bundle's value ('packaged')")
    p.add_argument("--synthetic-n", type=int, default=864,
                   help="size of the synthetic phantom set (a third in train); the bundle's default set has 288")
    p.add_argument("--dataset", default=None, help="a manifest instead of the synthetic phantoms")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--out", default=None, help="also write the Markdown table (with a header) here")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    rows = []
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        work = Path(tmp)
        manifest = Path(args.dataset) if args.dataset else ensure_synthetic_dataset(
            work / "synthetic", n=args.synthetic_n)
        for mode in args.modes:
            rows.append(summarise(mode, run_mode(mode, args, manifest, work, log)))
    elapsed = time.perf_counter() - start
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    if max(load_before, os.getloadavg()[0]) > (os.cpu_count() or 1) - args.threads + 0.5:
        log(f"WARNING: other processes were using the CPUs ({load}). torch's spinning OpenMP threads slow "
            "down badly when oversubscribed, so wall-clock figures are unreliable: rerun on an idle machine "
            "(with --threads 1, CPU-time figures hold up much better)")
    cmd = "python bench/bench_engine.py" + ("" if argv is None and len(sys.argv) == 1 else
                                            " " + " ".join(argv if argv is not None else sys.argv[1:]))
    head = ["mode", "timed iterations x batch", "trainer img/s", "plain img/s", "ratio of totals",
            "trainer / plain (median of paired iterations)", "same, per CPU-second", "plain CPU ms/iteration",
            "trainer - plain, CPU ms/iteration (median)"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    header = (f"Machine: {cpu_model()}, {args.threads} threads (torch.set_num_threads; os.cpu_count()="
              f"{os.cpu_count()}); torch {torch.__version__}.\n"
              f"Model: {args.color_module} + {args.backbone}, batch {args.batch_size}, {args.image_size} px, "
              f"schedule {args.schedule}, float32 on CPU; {args.rounds} timed epochs after {args.warmup} "
              f"warm-up epoch(s), trainer and plain iterations alternating (bench time {elapsed:.0f} s; "
              f"{load}).\n"
              f"Command: `{cmd}`\n")
    text = header + "\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
