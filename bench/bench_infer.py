"""End-to-end folder inference throughput on CPU: ``mcolor infer`` against torchxrayvision's pipeline.

What is timed, per run, in a fresh Python process (imports excluded, reported apart as start-up):

* **mcolor**: :func:`mcolor.inference.runner.run_folder` on a folder of real chest DICOMs: recursive scan
  with header rules, model loaded once from a bundle (default architecture: ``coloru`` +
  ``efficientnet_lite0``, at 128 px, the bundle default, and at 224 px), batched DataLoader decoding
  through ``read_radiograph`` + letterbox, ``SupervisedEvaluator`` forward, ``predictions.csv`` +
  ``report.json`` written.
* **torchxrayvision**: ``xrv.utils.read_xray_dcm`` -> ``XRayCenterCrop`` -> ``XRayResizer(224)`` (its
  documented pipeline) -> ``xrv.models.DenseNet(weights=None)`` (weights cannot be downloaded here;
  speed does not depend on them), same batch size, sigmoid, a CSV row per file.

Each (case, round) is its own subprocess, rounds interleaved, so ``ru_maxrss`` is that case's peak
memory (the main process; forked DataLoader workers share its pages and are not added). Weights are
random: this measures speed, not accuracy.

    python bench/bench_infer.py                       # 56 files, 3 rounds: several minutes on 2 cores
    python bench/bench_infer.py --files 56 --rounds 3 --out /tmp/infer.md

Timings are machine facts, not test assertions: nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM = REPO.parent / "shared" / "data" / "dicom"
CASES = ("mcolor128", "mcolor224", "mcolor128_w1", "xrv224")


def chest_sources() -> list[Path]:
    """The real chest DICOMs available: SIIM CR (JPEG baseline, MONOCHROME2 and 1) and pydicom-data RG1."""
    from pydicom.data import get_testdata_file

    names = ("siim_cr_chest_monochrome2_jpeg.dcm", "siim_cr_chest_fake_monochrome1_jpeg.dcm")
    found = [SHARED_DICOM / n for n in names]
    found = [p for p in found if p.is_file()]
    for name in ("RG1_UNCI.dcm", "RG1_J2KI.dcm"):
        path = get_testdata_file(name)
        if path:
            found.append(Path(str(path)))
    if not found:
        sys.exit("no chest DICOM found (need ../shared/data/dicom or pip install pydicom-data)")
    return found


def make_folder(root: Path, n: int) -> dict[str, int]:
    """``n`` copies cycling through the sources, 8 per study folder; returns the count per source."""
    sources = chest_sources()
    counts: dict[str, int] = {}
    for i in range(n):
        src = sources[i % len(sources)]
        dst = root / f"study{i // 8:03d}" / f"img{i:04d}_{src.stem}.dcm"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        counts[src.name] = counts.get(src.name, 0) + 1
    return counts


def make_bundle(root: Path, image_size: int) -> Path:
    """The repository bundle with an untrained default-architecture checkpoint at ``image_size``."""
    import torch

    from mcolor.engines.metrics import OperatingPoint
    from mcolor.networks import ColorizedClassifier

    bundle = root / f"bundle{image_size}" / "cxr_colorization"
    shutil.copytree(REPO / "bundles" / "cxr_colorization" / "configs", bundle / "configs")
    (bundle / "models").mkdir()
    torch.manual_seed(0)
    net = ColorizedClassifier("coloru", "efficientnet_lite0", num_classes=1, pretrained=False)
    spec = {"color_module": "coloru", "backbone": "efficientnet_lite0", "num_classes": 1, "task": "binary",
            "labels": ["clear", "opacity"], "output_names": ["opacity"], "image_size": image_size,
            "letterbox": "pad", "imagenet_norm": "auto", "input_normalization": "minmax"}
    torch.save({"model": net.state_dict(), "spec": spec, "operating_point": OperatingPoint(1).state_dict()},
               bundle / "models" / "model.pt")
    return bundle


def _usage(start: Any) -> dict[str, float]:
    """CPU seconds of the timed part (process + DataLoader workers) and peak RSS before/after it."""
    end_self, end_kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    self0, kids0 = start
    cpu = (end_self.ru_utime + end_self.ru_stime - self0.ru_utime - self0.ru_stime
           + end_kids.ru_utime + end_kids.ru_stime - kids0.ru_utime - kids0.ru_stime)
    return {"cpu_s": cpu, "import_rss_mib": self0.ru_maxrss / 1024, "maxrss_mib": end_self.ru_maxrss / 1024}


def child_mcolor(folder: Path, bundle: Path, out: Path, batch_size: int, workers: int) -> dict[str, Any]:
    from mcolor.inference.rules import SelectionRules
    from mcolor.inference.runner import InferOptions, run_folder

    startup = time.perf_counter() - _T0
    usage0 = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    t = time.perf_counter()
    opts = InferOptions(device="cpu", batch_size=batch_size, num_workers=workers, progress=False,
                        rules=SelectionRules())
    result = run_folder(folder, bundle, out, opts)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "images": result.counts["predicted"], "errors": result.counts["error"],
            "startup_s": startup, **_usage(usage0)}


def child_xrv(folder: Path, out: Path, batch_size: int) -> dict[str, Any]:
    import csv
    import warnings

    import numpy as np
    import torch
    import torchvision
    import torchxrayvision as xrv

    startup = time.perf_counter() - _T0
    usage0 = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    t = time.perf_counter()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    model = xrv.models.DenseNet(weights=None).eval()
    transform = torchvision.transforms.Compose([xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224)])
    rows = []
    for i in range(0, len(files), batch_size):
        chunk = files[i:i + batch_size]
        images = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read_xray_dcm warns once per MONOCHROME1 file
            for path in chunk:
                images.append(transform(xrv.utils.read_xray_dcm(path)[None, ...]))
        with torch.no_grad():
            probs = torch.sigmoid(model(torch.from_numpy(np.stack(images)))).numpy()
        rows += [[str(p.relative_to(folder)), *map(float, pr)] for p, pr in zip(chunk, probs, strict=True)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "images": len(rows), "errors": 0, "startup_s": startup, **_usage(usage0)}


def run_child(case: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(work / f"out_{case}", ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", case, "--work", str(work), "--batch-size", str(args.batch_size),
           "--workers", str(args.workers), "--files", str(args.files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    folder = work / "input"
    if args.child == "prepare":  # torch is imported here, never in the parent (see main)
        counts = make_folder(folder, args.files)
        for size in (128, 224):
            make_bundle(work, size)
        result: dict[str, Any] = {"counts": counts, "machine": describe_machine()}
    elif args.child == "xrv224":
        result = child_xrv(folder, work / "out_xrv224", args.batch_size)
    else:
        size = 224 if args.child == "mcolor224" else 128
        workers = 1 if args.child.endswith("_w1") else args.workers
        result = child_mcolor(folder, work / f"bundle{size}" / "cxr_colorization", work / f"out_{args.child}",
                              args.batch_size, workers)
    print(json.dumps(result))


def describe_machine() -> str:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, no GPU; Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    base = statistics.median(r["images"] / r["seconds"] for r in results["xrv224"]) if "xrv224" in results else None
    labels = {"mcolor128": "mcolor infer, coloru + efficientnet_lite0, 128 px (bundle default)",
              "mcolor224": "mcolor infer, coloru + efficientnet_lite0, 224 px",
              "mcolor128_w1": "mcolor infer, 128 px, --num-workers 1 (decoding in a worker)",
              "xrv224": "torchxrayvision: read_xray_dcm + crop + XRayResizer(224) + DenseNet-121"}
    lines = ["| pipeline | images | images/s (wall) | vs xrv | images per CPU-s | peak RSS (MiB) "
             "| of which imports (MiB) | start-up (s) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, runs in results.items():
        rate = statistics.median(r["images"] / r["seconds"] for r in runs)
        per_cpu = statistics.median(r["images"] / r["cpu_s"] for r in runs)
        ratio = f"{rate / base:.2f}x" if base else "-"
        lines.append(f"| {labels[case]} | {runs[0]['images']} | {rate:.2f} | {ratio} | {per_cpu:.2f} "
                     f"| {max(r['maxrss_mib'] for r in runs):.0f} | {max(r['import_rss_mib'] for r in runs):.0f} "
                     f"| {statistics.median(r['startup_s'] for r in runs):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=56)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers of the mcolor cases (default: mcolor infer's default)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers is None:
        args.workers = min(4, max(0, (os.cpu_count() or 2) - 2))  # = mcolor.cli.infer.DEFAULT_WORKERS
    if args.child:
        child_main(args)
        return
    cases = [c for c in args.cases.split(",") if c]
    # The parent stays small: Linux keeps ru_maxrss across fork + exec, so a parent that had imported
    # torch would lend every child its own peak. Preparation (which needs torch) is a child too.
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        work = Path(tmp)
        prep = run_child("prepare", work, args)
        counts, machine = prep["counts"], prep["machine"]
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
        loads = [os.getloadavg()[0]]
        for r in range(args.rounds):
            for case in cases:
                results[case].append(run_child(case, work, args))
                print(f"round {r + 1} {case}: {json.dumps(results[case][-1])}", file=sys.stderr)
            loads.append(os.getloadavg()[0])
    text = (f"machine: {machine}\nfiles: {args.files} ({', '.join(f'{k} x{v}' for k, v in counts.items())})"
            f"\nbatch size {args.batch_size}, mcolor workers {args.workers}, {args.rounds} rounds (medians); "
            f"1-min load average during the run: {min(loads):.1f}-{max(loads):.1f}\n\n{table(results)}\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
