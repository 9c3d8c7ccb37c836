"""Training-step cost of each colorization module, alone and in front of timm backbones (CPU).

One step = ``zero_grad`` + forward + loss + backward + SGD step on a random batch (default 16 x 224 px).
Every configuration is built first and warmed up; then the timed steps are interleaved (one step of
each configuration per round, ``--steps`` rounds) so that machine drift hits all of them alike, and the
median step time of each is reported. "x backbone" is the full ``ColorizedClassifier`` step time
divided by the same backbone's step time on a 3-channel input (so ``replicate`` is ~1.0x).

    python bench/bench_modules.py                       # defaults: a few minutes on an idle 2-core CPU
    python bench/bench_modules.py --steps 3 --image-size 128 --out /tmp/modules.md
    python bench/bench_modules.py --threads 1 --clock cpu  # on a shared, busy machine (CPU time per step)

Timings are machine facts, not test assertions: nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import timm
import torch
from torch import nn

from mcolor.machine import cpu_model
from mcolor.networks import ColorizedClassifier, create_color_module, list_color_modules

DEFAULT_BACKBONES = ("resnet18", "efficientnet_lite0")


@dataclass
class Case:
    """One timed configuration: a model, its input, a loss closure and its optimiser (if any)."""

    name: str
    model: nn.Module
    inputs: torch.Tensor
    loss_fn: Callable[[torch.Tensor], torch.Tensor]
    times: list[float] = field(default_factory=list)  # wall seconds per step
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per step (all threads)

    def __post_init__(self) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9) if params else None
        self.trainable = bool(params)
        self.model.train()

    def step(self) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        out = self.model(self.inputs)
        if self.trainable:
            loss = self.loss_fn(out)
            loss.backward()
            self.optimizer.step()  # type: ignore[union-attr]
        return time.perf_counter() - start, time.process_time() - cpu


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def fmt_params(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def build_cases(modules: list[str], backbones: list[str], batch: int, size: int) -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    gray = torch.rand(batch, 1, size, size, generator=gen)
    rgb = torch.rand(batch, 3, size, size, generator=gen)
    target = torch.randint(0, 2, (batch, 1), generator=gen).float()
    bce = nn.BCEWithLogitsLoss()

    def head_loss(out: torch.Tensor) -> torch.Tensor:
        return bce(out, target)

    def mean_loss(out: torch.Tensor) -> torch.Tensor:
        return out.square().mean()

    torch.manual_seed(0)
    cases = [Case(f"module:{m}", create_color_module(m), gray, mean_loss) for m in modules]
    for b in backbones:
        backbone = timm.create_model(b, pretrained=False, num_classes=1)
        cases.append(Case(f"{b}:backbone", backbone, rgb, head_loss))
        for m in modules:
            cases.append(Case(f"{b}:{m}", ColorizedClassifier(m, b, num_classes=1, pretrained=False),
                              gray, head_loss))
    return cases


def run(cases: list[Case], steps: int, warmup: int, log: Callable[[str], None]) -> None:
    for c in cases:
        t0 = time.perf_counter()
        for _ in range(warmup):
            c.step()
        log(f"warm-up {c.name}: {(time.perf_counter() - t0) / max(warmup, 1) * 1e3:.0f} ms/step")
    for r in range(steps):
        t0 = time.perf_counter()
        for c in cases:
            wall, cpu = c.step()
            c.times.append(wall)
            c.cpu.append(cpu)
        log(f"round {r + 1}/{steps}: {time.perf_counter() - t0:.1f} s")


def table(cases: list[Case], modules: list[str], backbones: list[str], clock: str = "wall") -> str:
    by = {c.name: c for c in cases}

    def ms(name: str) -> float:
        return statistics.median(by[name].times if clock == "wall" else by[name].cpu) * 1e3

    unit = "ms/step" if clock == "wall" else "CPU ms/step"
    head = ["colorization module", "module params", f"module alone {unit}"]
    for b in backbones:
        head += [f"{b} params", f"{b} {unit}", f"{b} x backbone"]
    rows = [head, ["---"] * len(head)]
    base_row = ["(backbone alone, 3-ch input)", "-", "-"]
    for b in backbones:
        base = by[f"{b}:backbone"]
        base_row += [fmt_params(count_params(base.model)), f"{ms(base.name):.0f}", "1.00x"]
    rows.append(base_row)
    for m in modules:
        alone = by[f"module:{m}"]
        alone_ms = f"{ms(alone.name):.1f}" + ("" if alone.trainable else " (fwd only)")
        row = [f"`{m}`", fmt_params(count_params(alone.model)), alone_ms]
        for b in backbones:
            full = by[f"{b}:{m}"]
            row += [fmt_params(count_params(full.model)), f"{ms(full.name):.0f}",
                    f"{ms(full.name) / ms(f'{b}:backbone'):.2f}x"]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=4, help="timed steps per configuration (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per configuration first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--modules", nargs="+", default=None, help="default: every registered module")
    p.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES))
    p.add_argument("--out", default=None, help="also write the Markdown table (with a header) here")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="'cpu': process CPU time per step, robust to other load with --threads 1")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    modules = args.modules or list_color_modules()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    cases = build_cases(modules, args.backbones, args.batch_size, args.image_size)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    run(cases, args.steps, args.warmup, log)
    elapsed = time.perf_counter() - start
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    if max(load_before, os.getloadavg()[0]) > (os.cpu_count() or 1) - args.threads + 0.5:
        log(f"WARNING: other processes were using the CPUs ({load}). torch's spinning OpenMP threads slow "
            "down badly when oversubscribed, so wall-clock figures are unreliable: rerun on an idle machine "
            "(with --threads 1, CPU-time figures hold up much better)")
    cmd = "python bench/bench_modules.py" + ("" if argv is None and len(sys.argv) == 1 else
                                            " " + " ".join(argv if argv is not None else sys.argv[1:]))
    header = (f"Machine: {cpu_model()}, {args.threads} threads (torch.set_num_threads; os.cpu_count()="
              f"{os.cpu_count()}); torch {torch.__version__}, timm {timm.__version__}.\n"
              f"Step = zero_grad + forward + loss + backward + SGD(momentum) step, batch {args.batch_size}, "
              f"{args.image_size} px, float32; {args.clock} clock; median of {args.steps} interleaved steps "
              f"after {args.warmup} warm-up steps (bench time {elapsed:.0f} s; {load}).\nCommand: `{cmd}`\n")
    text = header + "\n" + table(cases, modules, args.backbones, args.clock) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
