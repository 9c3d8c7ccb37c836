"""Dataset caching (issue 3): second-epoch speed-up with ``cache: memory`` and ``cache: disk``.

The bundle's deterministic preprocessing (``LoadRadiographd`` + ``Letterboxd`` to 224 px) over real
radiographs (the shared DICOM and PNG files, copied N times under distinct names), iterated for two
epochs by a MONAI DataLoader, for each cache mode in the same run. Target: epoch 2 >= 5x faster than
epoch 1 with caching on. ``none`` is the baseline (both epochs decode).

    python bench/bench_cache.py --copies 8
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset
from monai.transforms import Compose, EnsureTyped

from mcolor.transforms import Letterboxd, LoadRadiographd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def files(copies: int, work: Path) -> list[dict[str, str]]:
    src = sorted(SHARED.glob("dicom/*.dcm")) + sorted(SHARED.glob("radiographs/*.png"))
    try:
        from pydicom.data import get_testdata_file

        src += [Path(get_testdata_file(n)) for n in ("RG1_UNCI.dcm", "RG1_J2KI.dcm")]
    except Exception:  # pydicom-data is optional here
        pass
    if not src:
        raise SystemExit(f"no input files under {SHARED}")
    items = []
    for c in range(copies):
        for p in src:
            dst = work / f"{c}_{p.name}"
            shutil.copyfile(p, dst)
            items.append({"image": str(dst)})
    return items


def epoch(loader: DataLoader) -> float:
    t0 = time.perf_counter()
    for batch in loader:
        assert batch["image"].shape[-1] == 224
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        items = files(args.copies, work)
        tf = Compose([LoadRadiographd(keys="image"), Letterboxd(keys="image", size=224),
                      EnsureTyped(keys="image", track_meta=False)])
        print(f"{len(items)} files; torch {torch.__version__}; 2 threads")
        print("| cache | epoch 1 (s) | epoch 2 (s) | epoch 1 / epoch 2 |\n| --- | ---: | ---: | ---: |")
        for mode in ("none", "memory", "disk"):
            t_build = time.perf_counter()  # CacheDataset decodes at construction: that is its first epoch
            if mode == "none":
                ds = Dataset(items, tf)
            elif mode == "memory":
                ds = CacheDataset(items, tf, progress=False, num_workers=None)
            else:
                ds = PersistentDataset(items, tf, cache_dir=work / "cache")
            build = time.perf_counter() - t_build
            loader = DataLoader(ds, batch_size=8, num_workers=0)
            e1 = epoch(loader) + build
            e2 = epoch(loader)
            print(f"| {mode} | {e1:.2f} | {e2:.2f} | {e1 / e2:.1f}x |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
