"""Coverage-guided fuzzing of :func:`mcolor.io.read_radiograph` with atheris (optional, run by hand).

Not collected by pytest (no ``test_`` prefix); ``tests/test_fuzz_readers.py`` runs :func:`one_input` on the
seeds so that the harness keeps working. See ``docs/fuzzing.md``::

    pip install atheris
    python tests/fuzz_atheris.py --make-seeds fuzz-seeds          # real-file seeds from tests/corpus.py
    python tests/fuzz_atheris.py fuzz-seeds -max_total_time=3600 -rss_limit_mb=2048 -timeout=10

The property is the reader's contract: a valid float32 ``(H, W)`` image in ``[0, 1]`` or a
:class:`~mcolor.errors.RadiographReadError` with a documented reason. Any other exception is a finding;
atheris saves the input as ``crash-*`` (``-timeout`` and ``-rss_limit_mb`` turn hangs and memory bombs
into findings too).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from corpus import SourceMissing, rg1_j2k, rg1_native, small_jpeg, small_png, small_volume  # noqa: E402

from mcolor.errors import RadiographReadError
from mcolor.io import READ_ERROR_REASONS, read_radiograph

_SCRATCH: list[Path] = []


def _scratch() -> Path:
    """One scratch file for the whole process, removed at exit."""
    if not _SCRATCH:
        folder = tempfile.mkdtemp(prefix="mcolor-atheris-")
        atexit.register(shutil.rmtree, folder, True)
        _SCRATCH.append(Path(folder) / "input.bin")
    return _SCRATCH[0]


def one_input(data: bytes) -> None:
    """Write ``data`` to a file (the reader takes paths), read it, check the contract."""
    path = _scratch()
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image, _ = read_radiograph(path)
        except RadiographReadError as exc:
            if exc.reason not in READ_ERROR_REASONS:
                raise AssertionError(f"undocumented reason {exc.reason!r}") from exc
            return
    if not (image.dtype == np.float32 and image.ndim == 2 and min(image.shape) >= 1):
        raise AssertionError(f"bad image {image.dtype} {image.shape}")
    if not (np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0):
        raise AssertionError("image values outside [0, 1]")


def write_seeds(folder: Path) -> list[Path]:
    """The real-file seeds (those installed here) written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    volumes = [(f"chest{ext}", lambda ext=ext: small_volume(ext)) for ext in (".mha", ".nrrd", ".nii", ".nii.gz")]
    for name, make in (("rg1_native.dcm", rg1_native), ("rg1_j2k.dcm", rg1_j2k), ("chest.png", small_png),
                       ("chest.jpg", small_jpeg), *volumes):
        try:
            data = make()
        except SourceMissing as exc:
            print(f"seed {name} skipped: {exc}", file=sys.stderr)
            continue
        (folder / name).write_bytes(data)
        written.append(folder / name)
    return written


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[1] == "--make-seeds":
        for path in write_seeds(Path(argv[2])):
            print(path)
        return
    import atheris  # optional: pip install atheris

    atheris.instrument_all()
    atheris.Setup(argv, one_input)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
