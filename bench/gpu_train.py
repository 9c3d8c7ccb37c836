"""GPU training throughput with AMP on and off (issue 4): efficientnet_lite0 + coloru at 224 px.

Prepared for a short run on a lent GPU (a few minutes): MONAI ``SupervisedTrainer`` configured as the
bundle configures it (``decollate=False``), random tensors resident on the GPU so the figure is the
model + engine cost, fp32 vs AMP fp16 (GradScaler) vs AMP bf16, optionally ``channels_last``.
Prints a Markdown table with the card's name; not run in CI (needs CUDA).

    python bench/gpu_train.py --batch-size 64 --steps 60 --out gpu_train.md
"""

from __future__ import annotations

import argparse
import time

import torch
from monai.engines import SupervisedTrainer

from mcolor.engines import build_loss, build_optimizer
from mcolor.networks import ColorizedClassifier


def measure(amp: str, channels_last: bool, batch: int, steps: int, size: int, pretrained: str = "false") -> float:
    device = torch.device("cuda")
    torch.manual_seed(0)
    net = ColorizedClassifier("coloru", "efficientnet_lite0", num_classes=1, pretrained=pretrained).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    x = torch.rand(batch, 1, size, size, device=device)
    y = torch.randint(0, 2, (batch, 1), device=device).float()
    data = [{"image": x, "label": y}] * (steps + 10)
    trainer = SupervisedTrainer(
        device=device, max_epochs=1, train_data_loader=data, network=net,
        optimizer=build_optimizer(net, "sgd", 0.01), loss_function=build_loss("binary"),
        amp=amp != "off", amp_kwargs={"dtype": torch.bfloat16 if amp == "bf16" else torch.float16},
        decollate=False, optim_set_to_none=True, epoch_length=10,
    )
    trainer.run()  # warm-up (cudnn autotune, allocator)
    torch.cuda.synchronize()
    trainer = SupervisedTrainer(
        device=device, max_epochs=1, train_data_loader=data, network=net,
        optimizer=build_optimizer(net, "sgd", 0.01), loss_function=build_loss("binary"),
        amp=amp != "off", amp_kwargs={"dtype": torch.bfloat16 if amp == "bf16" else torch.float16},
        decollate=False, optim_set_to_none=True, epoch_length=steps,
    )
    t0 = time.perf_counter()
    trainer.run()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", default=None)
    ap.add_argument("--pretrained", default="false",
                    help="backbone weights (throughput does not depend on them; 'packaged' or a file also work)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_train.py needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    card = torch.cuda.get_device_name(0)
    rows = [f"GPU: {card}; torch {torch.__version__}; batch {args.batch_size}; {args.size} px; {args.steps} steps",
            "", "| precision | channels_last | images/s | vs fp32 |", "| --- | --- | ---: | ---: |"]
    base = None
    for amp in ("off", "fp16", "bf16"):
        for cl in (False, True):
            ips = measure(amp, cl, args.batch_size, args.steps, args.size, args.pretrained)
            base = base or ips
            rows.append(f"| {'fp32' if amp == 'off' else amp} | {cl} | {ips:.0f} | {ips / base:.2f}x |")
            print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out:
        open(args.out, "w").write(text)


if __name__ == "__main__":
    main()
