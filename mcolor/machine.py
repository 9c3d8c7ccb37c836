"""The machine code runs on: one description shared by model provenance, sweep records and benchmarks.

Why it matters: the same training run on another CPU family takes other float kernels (``cpu_capability``:
AVX2, AVX512, ...) and drifts to other weights, so runs from two machines are not bit-comparable even when
every seed is fixed. Reading it once here keeps the provenance, the sweep records' ``cpu`` column and the
benchmark reports naming a machine the same way.
"""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:  # not Linux
        pass
    return cpu


def environment() -> dict[str, str]:
    """What a model was trained with and on: Python, torch, platform, CPU model and the CPU kernels torch uses."""
    import torch  # here, not at module level: benchmarks that time imports call cpu_model() without torch

    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(terse=True),
            "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
