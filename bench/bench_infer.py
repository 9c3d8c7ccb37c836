"""Folder inference throughput on CPU at 224 px: ``mcolor infer`` (each backend) against torchxrayvision and
against bare decoding, on the same folder of distinct real chest radiographs, in one run.

Every (case, round) is a fresh Python process; the timed part excludes its imports (shown apart as start-up)
and includes everything else a run does (model load, scan, decode, forward, outputs). Rounds are interleaved
(order reversed every other round); medians are printed with the ratios of medians and the medians of
per-round ratios. Cases:

* ``decode``: the floor, ``pydicom.dcmread(p).pixel_array`` of every file, nothing else;
* ``mcolor-<arch>-<backend>``: the real CLI entry point, ``mcolor.cli.main(["infer", DIR, "--bundle", B,
  "--out", OUT, "--backend", ...])`` with its defaults (batch 16, ``--decode-threads 1``, ``--num-workers``
  default): recursive scan with the header rules, decode + letterbox in a thread ahead of the network, forward,
  ``predictions.csv`` + ``report.json``. Architectures: ``recipe`` = MobileNetV2 + COLORU, 224 px, stretch
  (``configs/recipes/kermany_pneumonia.json``) and ``default`` = the bundle's COLORU + EfficientNet-Lite0,
  here at 224 px. ``...-dt0`` is ``--decode-threads 0`` (decoding in line, for contrast);
* ``xrv``: torchxrayvision's documented pipeline, ``xrv.utils.read_xray_dcm`` -> ``XRayCenterCrop`` ->
  ``XRayResizer(224)`` -> ``xrv.models.DenseNet(weights=None)`` (its weights cannot be downloaded here) in
  batches of 16, sigmoid, one CSV row per file.

Weights are untrained (seeded) everywhere: this measures speed, not accuracy. Bundles are written in the
trained format with ``models/model.ts`` and ``models/model.onnx`` (bench/infer_inputs.py). The folder holds
``--files`` DISTINCT real radiographs written as DICOM at start-up into a temporary folder (see
``infer_inputs.make_dicom_folder``: pydicom-data RG1, SIIM CR, NIH/TBX11K/COVID from ../shared, then Kermany
224 px images; uncompressed, JPEG baseline and JPEG 2000 lossless). Peak memory is each process's own
``ru_maxrss`` (``wait4``); the parent never imports torch, because Linux carries ``ru_maxrss`` across
fork + exec.

    python bench/bench_infer.py                       # 64 files, 2 rounds: about 4 minutes on 2 loaded cores
    python bench/bench_infer.py --files 64 --rounds 2 --threads 1 --out /tmp/infer.md

Timings are machine facts, not test assertions: nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
ARCHS = {"recipe": ("coloru", "mobilenetv2_100", "stretch"), "default": ("coloru", "efficientnet_lite0", "pad")}
CASES = ("decode", "xrv", "mcolor-recipe-torchscript", "mcolor-recipe-eager", "mcolor-recipe-onnx",
         "mcolor-recipe-torchscript-dt0", "mcolor-default-torchscript")
LABELS = {
    "decode": "bare decode: pydicom.dcmread(p).pixel_array (the floor)",
    "xrv": "torchxrayvision 1.5.7: read_xray_dcm + XRayCenterCrop + XRayResizer(224) + DenseNet-121",
    "recipe": "MobileNetV2 + COLORU (recipe)",
    "default": "EfficientNet-Lite0 + COLORU (bundle default arch.)",
}


def label(case: str) -> str:
    if case in LABELS:
        return LABELS[case]
    _, arch, backend, *rest = case.split("-")
    extra = ", --decode-threads 0" if rest == ["dt0"] else ""
    return f"mcolor infer --backend {backend}{extra}, {LABELS[arch]}"


def _usage0() -> tuple[Any, Any]:
    return resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)


def _result(t: float, usage0: tuple[Any, Any], images: int, **extra: Any) -> dict[str, Any]:
    seconds = time.perf_counter() - t
    end_self, end_kids = _usage0()
    self0, kids0 = usage0
    cpu = (end_self.ru_utime + end_self.ru_stime - self0.ru_utime - self0.ru_stime
           + end_kids.ru_utime + end_kids.ru_stime - kids0.ru_utime - kids0.ru_stime)
    return {"seconds": seconds, "images": images, "cpu_s": cpu, "startup_s": t - _T0,
            "import_rss_mib": self0.ru_maxrss / 1024, **extra}


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def child_decode(folder: Path) -> dict[str, Any]:
    import pydicom

    t, usage0 = time.perf_counter(), _usage0()
    n = 0
    for path in files_of(folder):
        pixels = pydicom.dcmread(path).pixel_array
        n += pixels.size > 0
    return _result(t, usage0, n)


def child_mcolor(folder: Path, bundle: Path, out: Path, backend: str, decode_threads: int | None) -> dict[str, Any]:
    import contextlib
    import io

    import mcolor.cli.infer  # noqa: F401  (what the CLI imports before any work, whatever the backend)
    import mcolor.inference.runner  # noqa: F401
    from mcolor.cli import main

    t, usage0 = time.perf_counter(), _usage0()
    argv = ["infer", str(folder), "--bundle", str(bundle), "--out", str(out), "--backend", backend,
            "--no-progress", "--overwrite"]
    if decode_threads is not None:
        argv += ["--decode-threads", str(decode_threads)]
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"mcolor infer exited {code}")
    report = json.loads((out / "report.json").read_text())
    return _result(t, usage0, report["summary"]["predicted"], engine=report["model"]["engine"])


def child_xrv(folder: Path, out: Path, batch_size: int) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch
    import torchvision
    import torchxrayvision as xrv

    t, usage0 = time.perf_counter(), _usage0()
    files = files_of(folder)
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
        with torch.inference_mode():
            probs = torch.sigmoid(model(torch.from_numpy(np.stack(images)))).numpy()
        rows += [[str(p.relative_to(folder)), *map(float, pr)] for p, pr in zip(chunk, probs, strict=True)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return _result(t, usage0, len(rows))


def prepare(work: Path, args: argparse.Namespace, archs: set[str]) -> dict[str, Any]:
    """Child process (imports torch): the DICOM folder and one bundle per architecture."""
    import pydicom
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from infer_inputs import make_bundle, make_dicom_folder

    counts = make_dicom_folder(work / "input", args.files)
    onnx = True
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        onnx = False
    for arch in archs:
        color, backbone, letterbox = ARCHS[arch]
        make_bundle(work / f"bundle-{arch}", color, backbone, 224, letterbox, onnx=onnx)
    versions = {"torch": torch.__version__, "pydicom": pydicom.__version__}
    for name in ("onnxruntime", "torchxrayvision", "timm", "numpy", "skimage", "PIL"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    from mcolor.machine import cpu_model

    cpu = cpu_model()
    return {"counts": dict(counts), "onnx": onnx, "versions": versions, "threads": torch.get_num_threads(),
            "machine": f"{cpu}, {os.cpu_count()} cores, no GPU; Python {platform.python_version()}"}


def run_child(case: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh process; its own peak RSS from ``wait4``."""
    cmd = [sys.executable, __file__, "--child", case, "--work", str(work), "--batch-size", str(args.batch_size),
           "--files", str(args.files)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err, env=child_env(args))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{case} failed:\n{err.read().decode()[-3000:]}")
        result = json.loads(out.read().decode().strip().splitlines()[-1])
    result.update(maxrss_mib=usage.ru_maxrss / 1024, process_wall_s=wall)
    return result


def child_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    return env


def child_main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    folder = work / "input"
    case = args.child
    if case.startswith("prepare"):
        result = prepare(work, args, set(case.split(":")[1].split(",")) - {""})
    elif case == "decode":
        result = child_decode(folder)
    elif case == "xrv":
        result = child_xrv(folder, work / "out-xrv", args.batch_size)
    else:
        _, arch, backend, *rest = case.split("-")
        result = child_mcolor(folder, work / f"bundle-{arch}", work / f"out-{case}", backend,
                              0 if rest == ["dt0"] else None)
    print(json.dumps(result))


def backend_agreement(work: Path, cases: list[str]) -> str:
    """Max |p| difference between the backends of each architecture, file by file, from the last round's CSVs."""
    lines = []
    for arch in ARCHS:
        probs: dict[str, dict[str, float]] = {}
        for case in cases:
            if case.startswith(f"mcolor-{arch}-") and (work / f"out-{case}" / "predictions.csv").is_file():
                with open(work / f"out-{case}" / "predictions.csv", newline="") as fh:
                    probs[case] = {row["path"]: float(row["p_pneumonia"]) for row in csv.DictReader(fh)
                                   if row["status"] == "predicted"}
        names = sorted(probs)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = probs[a].keys() & probs[b].keys()
                diff = max((abs(probs[a][k] - probs[b][k]) for k in common), default=float("nan"))
                lines.append(f"{a} vs {b}: max |p difference| over {len(common)} files = {diff:.2g}")
    return "\n".join(lines)


def med(runs: list[dict[str, Any]], key: str = "rate") -> float:
    return statistics.median(r[key] for r in runs)


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    for runs in results.values():
        for r in runs:
            r["rate"] = r["images"] / r["seconds"]
            r["per_cpu"] = r["images"] / r["cpu_s"]

    def paired(case: str, base: str) -> str:
        if base not in results or case == base:
            return "-"
        ratios = [a["rate"] / b["rate"] for a, b in zip(results[case], results[base], strict=True)]
        return f"{med(results[case]) / med(results[base]):.2f}x ({statistics.median(ratios):.2f}x)"

    lines = ["| pipeline | images | images/s (wall) | vs xrv | vs bare decode | images per CPU-s | peak RSS (MiB) "
             "| of which imports (MiB) | start-up (s) | whole process (s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, runs in results.items():
        lines.append(f"| {label(case)} | {runs[0]['images']} | {med(runs):.2f} | {paired(case, 'xrv')} "
                     f"| {paired(case, 'decode')} | {med(runs, 'per_cpu'):.2f} "
                     f"| {max(r['maxrss_mib'] for r in runs):.0f} | {max(r['import_rss_mib'] for r in runs):.0f} "
                     f"| {med(runs, 'startup_s'):.1f} | {med(runs, 'process_wall_s'):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="xrv's batch (mcolor infer keeps its default 16)")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS of every case (default: torch's default, one per core)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated; mcolor-<recipe|default>-<torchscript|eager|onnx>[-dt0], xrv, decode")
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    cases = [c for c in args.cases.split(",") if c]
    archs = {c.split("-")[1] for c in cases if c.startswith("mcolor-")}
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        work = Path(tmp)
        prep = run_child("prepare:" + ",".join(sorted(archs)), work, args)
        if not prep["onnx"]:
            skipped = [c for c in cases if "-onnx" in c]
            cases = [c for c in cases if c not in skipped]
            print(f"onnxruntime not installed: skipping {skipped}", file=sys.stderr)
        if importlib.util.find_spec("torchxrayvision") is None:  # never imported here (it imports torch)
            if "xrv" in cases:
                cases.remove("xrv")
                print("torchxrayvision not installed (pip install torchxrayvision): skipping xrv", file=sys.stderr)
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
        loads = [os.getloadavg()[0]]
        t0 = time.perf_counter()
        for r in range(args.rounds):
            for case in cases if r % 2 == 0 else list(reversed(cases)):
                res = run_child(case, work, args)
                results[case].append(res)
                print(f"round {r + 1} {case}: {res['images']} images in {res['seconds']:.1f} s "
                      f"({res['images'] / res['seconds']:.2f}/s), cpu {res['cpu_s']:.1f} s, "
                      f"rss {res['maxrss_mib']:.0f} MiB, engine {res.get('engine', '-')}", file=sys.stderr)
                loads.append(os.getloadavg()[0])
        total = time.perf_counter() - t0
        agreement = backend_agreement(work, cases)
    mismatched = {c: r[0]["images"] for c, r in results.items() if r[0]["images"] != args.files}
    versions = ", ".join(f"{k} {v}" for k, v in prep["versions"].items())
    threads = args.threads or prep["threads"]
    text = (f"machine: {prep['machine']}; {versions}; torch threads {threads}\n"
            f"files: {args.files} distinct DICOMs: " + "; ".join(f"{v} x {k}" for k, v in prep["counts"].items())
            + f"\n{args.rounds} rounds interleaved (medians; in brackets the median of per-round ratios), "
            f"{total / 60:.1f} min; 1-min load average during the run: {min(loads):.1f}-{max(loads):.1f}\n"
            + (f"WARNING: cases that did not process every file: {mismatched}\n" if mismatched else "")
            + f"\n{table(results)}\n" + (f"\n{agreement}\n" if agreement else ""))
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
