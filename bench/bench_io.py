"""Reading + preprocessing throughput: mcolor vs a bare baseline, on the same files, in the same run.

mcolor:   ``Letterbox(size)(LoadRadiograph()(path))`` -> float32 tensor (1, size, size), i.e. the full
          reader (header checks, modality/VOI LUT, MONOCHROME1, min-max) + antialiased letterbox.
          Called directly, not through ``monai.transforms.Compose``, whose own bookkeeping (about
          0.2 ms per sample here) is not ours to measure; ``--compose`` includes it.
baseline: DICOM ``pydicom.dcmread(p).pixel_array`` -> float32 -> ``F.interpolate(antialias=True)``
          to size x size (no LUTs, no checks, aspect not kept); raster ``PIL.Image.open(p).convert("L")
          .resize((size, size), BILINEAR)`` -> float32 tensor; MetaImage / NRRD
          ``SimpleITK.GetArrayFromImage(SimpleITK.ReadImage(p))`` -> float32 -> ``F.interpolate``; NIfTI
          ``nibabel.load(p).get_fdata(dtype=float32)`` -> ``F.interpolate``.

The MetaImage / NRRD / NIfTI files are written at start-up, into a temporary folder, from real images: the
NIH PNG (512 x 512, 8-bit) and pydicom-data's RG1 CR (1955 x 1841, 16-bit stored values), by SimpleITK
(``.mha``, ``.nrrd``, ``.nii.gz``) and nibabel (``.nii``), uncompressed except ``.nii.gz``.

Rounds alternate baseline and mcolor (ABBA order) so that load from other processes hits both alike;
the reported rates are medians over rounds, per CPU-second of this (single-threaded) process and per
wall-second. "paired" is the median over rounds of each round's own mcolor/baseline ratio: on a machine
shared with other jobs, whose load drifts over seconds, it is steadier than the ratio of the medians
(use many short rounds, e.g. ``--rounds 40 --min-time 0.1``). Usage::

    python bench/bench_io.py [--size 224] [--rounds 5] [--min-time 0.6] [--threads 1] [--only PNG NIfTI]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from monai.transforms import Compose
from PIL import Image

from mcolor.machine import cpu_model
from mcolor.transforms import Letterbox, LoadRadiograph

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _testdata(*names: str) -> list[Path]:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return []
    found = [get_testdata_file(n) for n in names]
    return [Path(str(p)) for p in found if p is not None]


def volume_files(folder: Path) -> dict[str, list[Path]]:
    """The NIH PNG and RG1's stored pixels written as MetaImage, NRRD and NIfTI into ``folder``, by format."""
    import nibabel
    import SimpleITK as sitk

    sources = []
    png = SHARED / "radiographs" / "00000001_000.png"
    if png.is_file():
        with Image.open(png) as im:
            sources.append(("nih", np.asarray(im.convert("L"))))
    rg1 = _testdata("RG1_UNCI.dcm")
    if rg1:
        sources.append(("rg1", pydicom.dcmread(rg1[0]).pixel_array))
    out: dict[str, list[Path]] = {".mha": [], ".nrrd": [], ".nii": [], ".nii.gz": []}
    for name, pixels in sources:
        for ext in (".mha", ".nrrd", ".nii.gz"):
            sitk.WriteImage(sitk.GetImageFromArray(pixels), str(folder / f"{name}{ext}"))
            out[ext].append(folder / f"{name}{ext}")
        nibabel.save(nibabel.Nifti1Image(np.asfortranarray(pixels.T), np.eye(4)), str(folder / f"{name}.nii"))
        out[".nii"].append(folder / f"{name}.nii")
    return out


def cases(volumes: dict[str, list[Path]] | None = None) -> list[tuple[str, str, list[Path]]]:
    """(label, kind, files); cases whose files are missing are dropped."""
    radiographs = SHARED / "radiographs"
    volumes = volumes or {}
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
        ("MetaImage .mha raw, NIH 512x512 8-bit + RG1 1955x1841 16-bit", "itk", volumes.get(".mha", [])),
        ("NRRD .nrrd raw, same two images", "itk", volumes.get(".nrrd", [])),
        ("NIfTI .nii (nibabel), same two images", "nifti", volumes.get(".nii", [])),
        ("NIfTI .nii.gz (SimpleITK, gzip), same two images", "nifti", volumes.get(".nii.gz", [])),
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


def baseline_itk(size: int) -> Callable[[Path], torch.Tensor]:
    import SimpleITK as sitk

    def run(path: Path) -> torch.Tensor:
        pixels = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)
        t = torch.from_numpy(pixels)[None, None]
        return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]

    return run


def baseline_nifti(size: int) -> Callable[[Path], torch.Tensor]:
    import nibabel

    def run(path: Path) -> torch.Tensor:
        t = torch.from_numpy(nibabel.load(str(path)).get_fdata(dtype=np.float32))[None, None]
        return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]

    return run


BASELINES = {"dicom": baseline_dicom, "raster": baseline_raster, "itk": baseline_itk, "nifti": baseline_nifti}


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


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except (ImportError, AttributeError):
        return "?"


def machine() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pydicom": pydicom.__version__,
        "pillow": Image.__version__,
        "simpleitk": _version("SimpleITK"),
        "nibabel": _version("nibabel"),
        "numpy": np.__version__,
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
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="run the cases whose label contains TEXT")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load, letterbox = LoadRadiograph(), Letterbox(args.size)
    composed = Compose([load, letterbox])

    def mcolor(path: Path) -> torch.Tensor:
        return composed(path) if args.compose else letterbox(load(path))

    results = []
    scratch = tempfile.TemporaryDirectory(prefix="mcolor-bench-io-")
    selected = [
        case for case in cases(volume_files(Path(scratch.name)))
        if not args.only or any(text in case[0] for text in args.only)
    ]
    for label, kind, files in selected:
        base = BASELINES[kind](args.size)
        for path in files:  # warm-up: imports, decoder plugins, page cache
            assert tuple(mcolor(path).shape) == (1, args.size, args.size)
            base(path)
        ours, theirs = [], []
        for round_ in range(args.rounds):
            if round_ % 2:
                ours.append(rate(mcolor, files, args.min_time))
                theirs.append(rate(base, files, args.min_time))
            else:
                theirs.append(rate(base, files, args.min_time))
                ours.append(rate(mcolor, files, args.min_time))
        m_wall, b_wall = (statistics.median(r[0] for r in runs) for runs in (ours, theirs))
        m_cpu, b_cpu = (statistics.median(r[1] for r in runs) for runs in (ours, theirs))
        paired = [o[1] / t[1] for o, t in zip(ours, theirs, strict=True)]
        results.append(
            {
                "case": label,
                "files": len(files),
                "mcolor_cpu_fps": m_cpu,
                "baseline_cpu_fps": b_cpu,
                "ratio_cpu": m_cpu / b_cpu,
                "ratio_cpu_paired": statistics.median(paired),
                "ratio_cpu_paired_quartiles": statistics.quantiles(paired, n=4)[::2] if len(paired) > 1 else [],
                "mcolor_wall_fps": m_wall,
                "baseline_wall_fps": b_wall,
                "ratio_wall": m_wall / b_wall,
            }
        )
    scratch.cleanup()
    info = machine()
    print(f"machine: {info}")
    print(f"size {args.size}, rounds {args.rounds}, min-time {args.min_time}s, medians over rounds")
    print("files/s per CPU-second (contention-robust) and per wall-second\n")
    header = ["case", "files", "mcolor /CPU-s", "baseline /CPU-s", "ratio (CPU)", "paired (CPU)", "mcolor /s",
              "baseline /s"]
    print("| " + " | ".join([*header, "ratio (wall)"]) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        cpu = f"{r['mcolor_cpu_fps']:.1f} | {r['baseline_cpu_fps']:.1f} | {r['ratio_cpu']:.2f}x"
        cpu += f" | {r['ratio_cpu_paired']:.2f}x"
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
