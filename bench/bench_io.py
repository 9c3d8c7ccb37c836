"""Reading + preprocessing throughput: mcolor vs a bare baseline, on the same files, in the same run.

mcolor:   ``Letterbox(size)(LoadRadiograph()(path))`` -> float32 tensor (1, size, size), i.e. the full
          reader (header checks, modality/VOI LUT, MONOCHROME1, min-max) + antialiased letterbox.
          Called directly, not through ``monai.transforms.Compose``, whose own bookkeeping (about
          0.2 ms per sample here) is not ours to measure; ``--compose`` includes it.
baseline: DICOM ``pydicom.dcmread(p).pixel_array`` -> float32 -> ``F.interpolate(antialias=True)``
          to size x size (no LUTs, no checks, aspect not kept); raster ``PIL.Image.open(p).convert("L")
          .resize((size, size), BILINEAR)`` -> float32 tensor.

Rounds alternate baseline and mcolor so that load from other processes hits both alike; the
reported rates are medians over rounds, per CPU-second of this (single-threaded) process and per
wall-second. Usage::

    python bench/bench_io.py [--size 224] [--rounds 5] [--min-time 0.6] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from monai.transforms import Compose
from PIL import Image

from mcolor.transforms import Letterbox, LoadRadiograph

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _testdata(*names: str) -> list[Path]:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return []
    found = [get_testdata_file(n) for n in names]
    return [Path(str(p)) for p in found if p is not None]


def cases() -> list[tuple[str, str, list[Path]]]:
    """(label, kind, files); cases whose files are missing are dropped."""
    radiographs = SHARED / "radiographs"
    all_cases = [
        (
            "DICOM uncompressed, CR 1955x1841 + 1760x1760, 15-bit MONOCHROME1",
            "dicom",
            _testdata("RG1_UNCI.dcm", "RG3_UNCI.dcm"),
        ),
        ("DICOM JPEG 2000, same two CR images", "dicom", _testdata("RG1_J2KI.dcm", "RG3_J2KI.dcm")),
        (
            "DICOM JPEG baseline, SIIM CR 1024x1024 8-bit",
            "dicom",
            sorted((SHARED / "dicom").glob("siim_*.dcm")),
        ),
        ("PNG 8-bit gray, NIH 512x512", "raster", sorted(radiographs.glob("000*.png"))),
        ("PNG RGB-stored gray, TBX11K 512x512", "raster", sorted((radiographs / "tbx11k").rglob("*.png"))),
        ("JPEG RGB-stored gray, COVID 1036x885 + 2373x2373", "raster", sorted(radiographs.glob("*.jpg"))),
    ]
    return [
        (label, kind, files) for label, kind, files in all_cases if files and all(p.is_file() for p in files)
    ]


def baseline_dicom(size: int) -> Callable[[Path], torch.Tensor]:
    def run(path: Path) -> torch.Tensor:
        pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
        t = torch.from_numpy(pixels)[None, None]
        return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]

    return run


def baseline_raster(size: int) -> Callable[[Path], torch.Tensor]:
    def run(path: Path) -> torch.Tensor:
        with Image.open(path) as im:
            small = im.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(small, dtype=np.float32))[None]

    return run


def rate(fn: Callable[[Path], torch.Tensor], files: list[Path], min_time: float) -> tuple[float, float]:
    """(files per wall second, files per CPU second) over whole passes lasting >= ``min_time`` s.

    Everything here runs on one thread (torch threads = 1, numpy, Pillow, pydicom decoders), so the
    process CPU time is the cost of the work itself, robust to other processes sharing the cores.
    """
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        for path in files:
            fn(path)
        n += len(files)
        wall = time.perf_counter() - wall0
        if wall >= min_time:
            return n / wall, n / max(time.process_time() - cpu0, 1e-9)


def machine() -> dict[str, object]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?"
        )
    except OSError:
        model = platform.processor() or "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pydicom": pydicom.__version__,
        "pillow": Image.__version__,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.6, help="seconds per timed measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = a DataLoader worker)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--compose", action="store_true", help="run mcolor through monai Compose")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load, letterbox = LoadRadiograph(), Letterbox(args.size)
    composed = Compose([load, letterbox])

    def mcolor(path: Path) -> torch.Tensor:
        return composed(path) if args.compose else letterbox(load(path))

    results = []
    for label, kind, files in cases():
        base = baseline_dicom(args.size) if kind == "dicom" else baseline_raster(args.size)
        for path in files:  # warm-up: imports, decoder plugins, page cache
            assert tuple(mcolor(path).shape) == (1, args.size, args.size)
            base(path)
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(rate(base, files, args.min_time))
            ours.append(rate(mcolor, files, args.min_time))
        m_wall, b_wall = (statistics.median(r[0] for r in runs) for runs in (ours, theirs))
        m_cpu, b_cpu = (statistics.median(r[1] for r in runs) for runs in (ours, theirs))
        results.append(
            {
                "case": label,
                "files": len(files),
                "mcolor_cpu_fps": m_cpu,
                "baseline_cpu_fps": b_cpu,
                "ratio_cpu": m_cpu / b_cpu,
                "mcolor_wall_fps": m_wall,
                "baseline_wall_fps": b_wall,
                "ratio_wall": m_wall / b_wall,
            }
        )
    info = machine()
    print(f"machine: {info}")
    print(f"size {args.size}, rounds {args.rounds}, min-time {args.min_time}s, medians over rounds")
    print("files/s per CPU-second (contention-robust) and per wall-second\n")
    header = ["case", "files", "mcolor /CPU-s", "baseline /CPU-s", "ratio (CPU)", "mcolor /s", "baseline /s"]
    print("| " + " | ".join([*header, "ratio (wall)"]) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        cpu = f"{r['mcolor_cpu_fps']:.1f} | {r['baseline_cpu_fps']:.1f} | {r['ratio_cpu']:.2f}x"
        wall = f"{r['mcolor_wall_fps']:.1f} | {r['baseline_wall_fps']:.1f} | {r['ratio_wall']:.2f}x"
        print(f"| {r['case']} | {r['files']} | {cpu} | {wall} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
