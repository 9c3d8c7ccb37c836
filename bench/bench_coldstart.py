"""Cold start of ``mcolor infer`` on one DICOM, against the floor ``python -c "import torch, pydicom"``.

Each (case, round) is a fresh process, rounds interleaved (the order alternates every round), medians and the
median of per-round ratios printed. Cases:

* ``python``: ``python -c pass`` (the interpreter alone, for scale);
* ``floor``: ``python -c "import torch, pydicom"``, what any DICOM + torch tool must pay;
* ``imports``: the floor plus ``mcolor infer``'s own modules (``mcolor.cli``, ``mcolor.cli.infer``,
  ``mcolor.inference.runner``), no work;
* ``infer``: the real console script, ``mcolor infer DIR --bundle B --out OUT --overwrite --no-progress``,
  default ``--backend auto`` (which runs the bundle's ``models/model.ts``), on a folder holding ONE real chest
  CR DICOM (pydicom-data's RG1_UNCI, 1955 x 1841, 15-bit; any other real DICOM with ``--dicom``).

The bundle is written in a temporary folder in the trained format (``models/model.pt``, ``configs/metadata.json``
with the weights digest, ``models/model.ts``) with untrained weights of the bundle's default architecture
(``coloru`` + ``efficientnet_lite0``, 128 px; ``--backbone``/``--image-size`` for others): start-up does not
depend on the weights' values. One further run of the CLI under ``python -X importtime`` lists which heavy
modules (MONAI, timm, ignite, ...) it imported (the goal is none) and where its import time went.

    python bench/bench_coldstart.py                 # 10 rounds: about 1-2 minutes on 2 cores
    python bench/bench_coldstart.py --rounds 15 --out /tmp/coldstart.md

Timings are machine facts, not test assertions: nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("monai", "timm", "ignite", "matplotlib", "mlflow", "tensorboard", "highdicom", "onnxruntime", "onnx",
         "torchvision", "scipy", "skimage", "pandas", "mcolor.engines", "mcolor.networks")
CASES = ("python", "floor", "imports", "infer")


def mcolor_cli() -> list[str]:
    """The installed console script beside this interpreter (what a user runs), else ``python -m mcolor``."""
    script = Path(sys.executable).parent / "mcolor"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mcolor"]


def commands(work: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "python": [py, "-c", "pass"],
        "floor": [py, "-c", "import torch, pydicom"],
        "imports": [py, "-c", "import torch, pydicom, mcolor.cli, mcolor.cli.infer, mcolor.inference.runner"],
        "infer": [*mcolor_cli(), "infer", str(work / "input"), "--bundle", str(work / "bundle"), "--out",
                  str(work / "out"), "--overwrite", "--no-progress"],
    }


def run_case(cmd: list[str]) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS of one fresh process (``wait4``: that process's own rusage).
    Its output goes to a temporary file, so a full pipe cannot stall it."""
    with tempfile.TemporaryFile() as log:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{log.read().decode()[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


def prepare(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Child process (imports torch): the bundle and the one-file folder."""
    import shutil

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from infer_inputs import make_bundle

    make_bundle(work / "bundle", backbone=args.backbone, image_size=args.image_size)
    if args.dicom:
        src = Path(args.dicom)
    else:
        from pydicom.data import get_testdata_file

        found = get_testdata_file("RG1_UNCI.dcm")
        if not found:
            raise SystemExit("pydicom-data is not installed (pip install pydicom-data) and no --dicom given")
        src = Path(str(found))
    (work / "input" / "study").mkdir(parents=True)
    shutil.copyfile(src, work / "input" / "study" / "image.dcm")
    import pydicom

    ds = pydicom.dcmread(src, stop_before_pixels=True)
    return {"dicom": f"{src.name} ({ds.Columns}x{ds.Rows}, {ds.get('BitsStored')}-bit, "
                     f"{ds.file_meta.TransferSyntaxUID.name}, {ds.get('PhotometricInterpretation')})",
            "torch": torch.__version__, "pydicom": pydicom.__version__, "threads": torch.get_num_threads()}


def importtime_profile(work: Path) -> dict[str, Any]:
    """One CLI run under ``-X importtime``: heavy modules imported, and import self-time by top package."""
    cmd = commands(work)["infer"]
    if Path(cmd[0]).name == "mcolor":
        cmd = [sys.executable, "-X", "importtime", "-m", "mcolor", *cmd[1:]]
    else:
        cmd = [cmd[0], "-X", "importtime", *cmd[1:]]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"importtime run failed:\n{proc.stderr[-3000:]}")
    modules, per_package = [], collections.Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.split(":", 1)[1].split("|")
        name = name.strip()
        modules.append(name)
        per_package[name.split(".")[0]] += int(self_us)
    heavy = sorted({m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)})
    report = json.loads((work / "out" / "report.json").read_text())
    engine = (report.get("model") or {}).get("engine")
    return {"heavy": heavy, "engine": engine, "import_ms": sum(per_package.values()) / 1000,
            "top": [(k, v / 1000) for k, v in per_package.most_common(12)]}


def table(results: dict[str, list[dict[str, float]]]) -> str:
    floor = results["floor"]
    lines = ["| case | rounds | wall s (median) | min-max | vs floor (ratio of medians) | vs floor (median of "
             "per-round ratios) | CPU s (median) | peak RSS MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = statistics.median(r["wall_s"] for r in floor)
    for case, runs in results.items():
        wall = [r["wall_s"] for r in runs]
        paired = statistics.median(r["wall_s"] / f["wall_s"] for r, f in zip(runs, floor, strict=True))
        lines.append(f"| `{case}` | {len(runs)} | {statistics.median(wall):.2f} | {min(wall):.2f}-{max(wall):.2f} "
                     f"| {statistics.median(wall) / base:.2f}x | **{paired:.2f}x** "
                     f"| {statistics.median(r['cpu_s'] for r in runs):.2f} "
                     f"| {statistics.median(r['maxrss_mib'] for r in runs):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--dicom", default=None, help="the one DICOM to infer on (default pydicom-data RG1_UNCI)")
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        print(json.dumps(prepare(Path(args.work), args)))
        return
    # The parent never imports torch: Linux carries ru_maxrss across fork + exec, so a big parent would lend
    # every child its own peak. Preparation (which needs torch) runs in a child.
    with tempfile.TemporaryDirectory(prefix="bench_coldstart_") as tmp:
        work = Path(tmp)
        prep = subprocess.run([sys.executable, __file__, "--child", "prepare", "--work", str(work), "--backbone",
                               args.backbone, "--image-size", str(args.image_size)]
                              + (["--dicom", args.dicom] if args.dicom else []),
                              cwd=REPO, capture_output=True, text=True)
        if prep.returncode != 0:
            raise SystemExit(f"preparation failed:\n{prep.stderr[-3000:]}")
        info = json.loads(prep.stdout.strip().splitlines()[-1])
        cmds = commands(work)
        run_case(cmds["infer"])  # warm the page cache for every case's files once, untimed
        run_case(cmds["floor"])
        results: dict[str, list[dict[str, float]]] = {c: [] for c in CASES}
        loads = [os.getloadavg()[0]]
        for r in range(args.rounds):
            order = CASES if r % 2 == 0 else tuple(reversed(CASES))
            for case in order:
                results[case].append(run_case(cmds[case]))
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}: " + ", ".join(f"{c} {results[c][-1]['wall_s']:.2f}s" for c in CASES),
                  file=sys.stderr)
        profile = importtime_profile(work)
    from mcolor.machine import cpu_model  # stdlib only: the parent's imports are not what is timed

    cpu = cpu_model()
    infer_med = statistics.median(r["wall_s"] for r in results["infer"])
    floor_med = statistics.median(r["wall_s"] for r in results["floor"])
    text = (f"machine: {cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]}, torch {info['torch']} "
            f"({info['threads']} threads), pydicom {info['pydicom']}\n"
            f"input: one DICOM, {info['dicom']}; bundle: coloru + {args.backbone}, {args.image_size} px, "
            f"untrained weights, models/model.ts\n"
            f"command: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmds['infer']))}\n"
            f"{args.rounds} rounds, interleaved (order reversed every other round); 1-min load average during "
            f"the run: {min(loads):.1f}-{max(loads):.1f}\n\n{table(results)}\n\n"
            f"goal infer <= 1.5x floor: {'met' if infer_med <= 1.5 * floor_med else 'NOT met'} "
            f"({infer_med / floor_med:.2f}x)\n"
            f"mcolor infer's backend (report.json): {profile['engine']}\n"
            f"heavy modules imported by the run: {', '.join(profile['heavy']) or 'none'}\n"
            f"import self-time of the run (-X importtime), {profile['import_ms']:.0f} ms in all; by package: "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in profile["top"]) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
