"""Faults injected into training through the real bundle (``monai.bundle run`` in subprocesses, tiny settings).

* the output folder cannot be created (its parent is a regular file: even root cannot write there);
* the disk fills up while a checkpoint is written (``RLIMIT_FSIZE`` with SIGXFSZ ignored, so writes fail
  with EFBIG exactly as on a full disk);
* the last epoch checkpoint is truncated, then ``--resume true``.

Each must end with a non-zero exit and an error naming the problem, and never leave a ``*.pt`` that does not
load. The three runs go in parallel (about 30 s of start-up each is import time). Checkpoint corruption
variants, the non-finite loss guard and the atomic writer are also checked in-process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from bundle_runner import TINY, bundle_cmd, bundle_env, new_bundle
from ignite.engine import Engine, Events

from mcolor.atomic import atomic_write
from mcolor.data.synthetic import ensure_synthetic_dataset
from mcolor.engines.checkpoint import ResumeFromLast, load_checkpoint
from mcolor.engines.handlers import NonFiniteLossGuard
from mcolor.errors import McolorError, TrainingError

FAST = {**TINY, "backbone": "mobilenetv3_small_050", "epoch_length": 2, "seed": 3}
FSIZE_LIMIT = 1_000_000  # bytes: TensorBoard events fit, no checkpoint does (about 4 MB each)
TIMEOUT_S = 400


@dataclass
class Run:
    """A finished bundle run: its bundle folder, exit code and captured output."""

    out: Path
    returncode: int
    stdout: str
    stderr: str


def _full_disk() -> None:
    """preexec_fn: files may not grow past FSIZE_LIMIT; SIGXFSZ ignored so write() fails with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def run_parallel(jobs: dict[str, tuple[Path, dict[str, object], Callable[[], None] | None]],
                 cache: Path, logs: Path) -> dict[str, Run]:
    """Start every bundle run at once (one thread each), wait for all; output goes to files, not pipes."""
    env = {**bundle_env(cache), "OMP_NUM_THREADS": "1"}
    procs = {}
    for name, (bundle, overrides, preexec) in jobs.items():
        stdout, stderr = open(logs / f"{name}.out", "w"), open(logs / f"{name}.err", "w")
        procs[name] = (subprocess.Popen(bundle_cmd(["train.json"], overrides, bundle), env=env, stdout=stdout,
                                        stderr=stderr, preexec_fn=preexec), stdout, stderr)
    deadline = time.monotonic() + TIMEOUT_S
    runs = {}
    for name, (proc, stdout, stderr) in procs.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stdout.close()
        stderr.close()
        runs[name] = Run(jobs[name][0], proc.returncode, (logs / f"{name}.out").read_text(),
                         (logs / f"{name}.err").read_text())
    return runs


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    ensure_synthetic_dataset(path / "synthetic")
    return path


def real_shaped_checkpoint(path: Path) -> bytes:
    """What the bundle saves as ``checkpoint_epoch=1.pt`` (same network, same keys), written in-process."""
    from mcolor.networks import ColorizedClassifier

    net = ColorizedClassifier("coloru", FAST["backbone"], num_classes=1, pretrained=False)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    torch.save({"trainer": {"epoch_length": 2, "iteration": 2, "max_epochs": 1}, "model": net.state_dict(),
                "optimizer": optimizer.state_dict(), "spec": {"backbone": FAST["backbone"]}}, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("faults")
    blocker = root / "blocker"
    blocker.write_text("a regular file where the output folder's parent should be\n")
    resumed = new_bundle(root / "resumed")
    (resumed / "eval" / "checkpoints").mkdir(parents=True)
    ckpt = resumed / "eval" / "checkpoints" / "checkpoint_epoch=1.pt"
    data = real_shaped_checkpoint(ckpt)
    ckpt.write_bytes(data[: len(data) // 2])  # truncated, as by a crash on a filesystem without atomic rename
    (root / "resume.expected").write_bytes(data[: len(data) // 2])
    jobs = {
        "not_a_dir": (new_bundle(root / "not_a_dir"), {**FAST, "output_dir": blocker / "out"}, None),
        "full_disk": (new_bundle(root / "full_disk"), FAST, _full_disk),
        "resume": (resumed, {**FAST, "max_epochs": 2, "resume": "true"}, None),
    }
    return run_parallel(jobs, cache, root)


def tail(run: Run) -> str:
    return f"exit {run.returncode}\n{run.stdout[-1500:]}\n{run.stderr[-4000:]}"


def assert_no_invalid_checkpoint(folder: Path) -> None:
    """Every ``*.pt`` left under ``folder`` loads, and no temporary file of the atomic writer survives."""
    for path in folder.rglob("*.pt"):
        load_checkpoint(path)
    leftovers = [p for p in folder.rglob(".*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.mark.slow
def test_output_folder_that_cannot_exist(runs: dict[str, Run]) -> None:
    run = runs["not_a_dir"]
    blocker = run.out.parent / "blocker"
    assert run.returncode != 0, tail(run)
    assert "Not a directory" in run.stderr and str(blocker / "out") in run.stderr, tail(run)
    assert blocker.is_file()  # the blocking file is untouched
    assert "a regular file" in blocker.read_text()
    assert not (run.out / "models").exists()


@pytest.mark.slow
def test_full_disk_fails_loudly_without_a_partial_checkpoint(runs: dict[str, Run]) -> None:
    run = runs["full_disk"]
    assert run.returncode != 0, tail(run)
    assert "File too large" in run.stderr, tail(run)  # EFBIG, what a full disk looks like to write()
    assert (run.out / "eval" / "tensorboard").is_dir()  # it did train and log until the first model write
    assert not (run.out / "eval" / "checkpoints" / "model_final.pt").exists()
    assert not (run.out / "models" / "model.pt").exists()  # no partial model, and the metadata still untrained
    meta = json.loads((run.out / "configs" / "metadata.json").read_text())
    assert "provenance" not in meta["mcolor_model"]  # the metadata still describes no trained model
    assert_no_invalid_checkpoint(run.out)
    # the model is serialised in memory, then written: the error names the cause and the file
    assert "output_not_writable" in run.stderr and str(run.out) in run.stderr, tail(run)


@pytest.mark.slow
def test_truncated_checkpoint_then_resume_names_the_file(runs: dict[str, Run]) -> None:
    run = runs["resume"]
    ckpt = run.out / "eval" / "checkpoints" / "checkpoint_epoch=1.pt"
    assert run.returncode != 0, tail(run)
    assert "TrainingError" in run.stderr and f"checkpoint {ckpt} is corrupt" in run.stderr, tail(run)
    assert sorted(p.name for p in ckpt.parent.iterdir()) == [ckpt.name]  # nothing new written
    assert ckpt.read_bytes() == (run.out.parent / "resume.expected").read_bytes()  # the evidence is kept as is
    assert not (run.out / "models" / "model.pt").exists()
    with pytest.raises(TrainingError) as info:
        load_checkpoint(ckpt)  # and the reader gives the typed reason
    assert info.value.reason == "checkpoint_corrupt" and info.value.path == str(ckpt)


# --- in-process: corruption variants, the NaN guard, the atomic writer -----------------------------------------


def small_checkpoint(path: Path) -> Path:
    net = torch.nn.Linear(64, 64)
    torch.save({"model": net.state_dict(), "trainer": {"epoch": 1}}, path)
    return path


def _garble_head(data: bytes) -> bytes:
    return b"\x00" * 64 + data[64:]


def _random(data: bytes) -> bytes:
    return os.urandom(len(data))


def _empty(data: bytes) -> bytes:
    return b""


def _truncated_central_directory(data: bytes) -> bytes:
    return data[:-30]


def _a_list(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save([torch.zeros(2)], buf)
    return buf.getvalue()


@pytest.mark.parametrize("corrupt", [_garble_head, _random, _empty,
                                     _truncated_central_directory, _a_list], ids=lambda f: f.__name__.strip("_"))
def test_resume_from_a_corrupt_checkpoint_is_a_typed_error(corrupt: Callable[[bytes], bytes],
                                                           tmp_path: Path) -> None:
    path = small_checkpoint(tmp_path / "checkpoint_epoch=3.pt")
    small_checkpoint(tmp_path / "checkpoint_epoch=2.pt")  # an older, valid one: resume must not fall back silently
    path.write_bytes(corrupt(path.read_bytes()))
    engine = Engine(lambda e, b: None)
    resume = ResumeFromLast(tmp_path, {"model": torch.nn.Linear(64, 64)}, resume=True)
    with pytest.raises(TrainingError) as info:
        resume(engine)
    assert info.value.reason == "checkpoint_corrupt"
    assert info.value.path == str(path) and str(path) in str(info.value)


class _Payload:
    """Pickles as a call to ``Path.touch(marker)``: what a malicious checkpoint would run on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_resume_never_unpickles_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint_epoch=1.pt"
    torch.save({"model": torch.nn.Linear(2, 2).state_dict(), "extra": _Payload(marker)}, path)
    resume = ResumeFromLast(tmp_path, {"model": torch.nn.Linear(2, 2)}, resume=True)
    with pytest.raises(TrainingError) as info:
        resume(Engine(lambda e, b: None))
    assert info.value.reason == "unsafe_checkpoint" and "weights_only" in str(info.value)
    assert not marker.exists()


def test_flipped_byte_inside_tensor_data_is_detected(tmp_path: Path) -> None:
    path = small_checkpoint(tmp_path / "checkpoint_epoch=1.pt")
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if "/data/" in i.filename)
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 2 + 64] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(TrainingError):
        load_checkpoint(path)


def test_non_finite_loss_stops_training_before_any_checkpoint(tmp_path: Path) -> None:
    losses = iter([0.7, 0.6, float("nan"), 0.5])
    engine = Engine(lambda e, b: {"loss": torch.tensor(next(losses))})
    NonFiniteLossGuard().attach(engine)
    saved: list[int] = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: saved.append(e.state.epoch))
    with pytest.raises(TrainingError) as info:
        engine.run(range(4), max_epochs=1)
    assert info.value.reason == "non_finite_loss"
    assert "nan" in str(info.value) and "iteration 3" in str(info.value)
    assert saved == []  # the epoch never completed: no handler could save NaN weights


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text('{"auc": 0.9}')

    def fails_halfway(fh: object) -> None:
        fh.write('{"auc": ')  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    with pytest.raises(McolorError) as info:
        atomic_write(target, fails_halfway)
    assert info.value.reason == "output_not_writable" and "No space left" in str(info.value)
    assert target.read_text() == '{"auc": 0.9}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_write_into_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(McolorError) as info:
        atomic_write(tmp_path / "blocker" / "sub" / "metrics.json", lambda fh: fh.write("{}"))
    assert info.value.reason == "output_not_writable"
    assert str(tmp_path / "blocker" / "sub" / "metrics.json") in str(info.value)
