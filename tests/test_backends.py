"""Runs the backend suite (tests marked ``backend``) on every other Taichi backend this machine has,
each in its own process (one Taichi runtime per process): Vulkan (e.g. Mesa's lavapipe on a CPU)
and CUDA. This process's own backend runs those tests directly. A backend that is missing is skipped
with the reason, unless ``TAICHI_SOFTRAS_REQUIRE_BACKENDS`` names it (CI sets it to ``vulkan``), in
which case its absence fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taichi_softras import runtime

ROOT = Path(__file__).resolve().parents[1]
PROBE = {
    "vulkan": "import taichi as ti; ti.init(arch=ti.vulkan, enable_fallback=False)",
    "cuda": "import taichi as ti; ti.init(arch=ti.cuda, enable_fallback=False)",
}


def _available(arch: str) -> tuple[bool, str]:
    if arch == "cuda" and not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    probe = subprocess.run([sys.executable, "-c", PROBE[arch]], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "ENABLE_TAICHI_HEADER_PRINT": "0"})
    if probe.returncode != 0:
        return False, f"Taichi cannot start '{arch}': {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode}"
    return True, ""


@pytest.mark.parametrize("arch", ["vulkan", "cuda"])
def test_backend_suite(arch):
    if runtime.ensure_initialized() == arch:
        pytest.skip(f"this process runs on '{arch}': the backend tests ran here directly")
    ok, why = _available(arch)
    required = {a.strip() for a in os.environ.get("TAICHI_SOFTRAS_REQUIRE_BACKENDS", "").split(",") if a.strip()}
    if not ok:
        if arch in required:
            pytest.fail(f"TAICHI_SOFTRAS_REQUIRE_BACKENDS names '{arch}' but {why}")
        pytest.skip(why)
    marker = "backend or cuda" if arch == "cuda" else "backend"
    env = {**os.environ, "TAICHI_SOFTRAS_ARCH": arch}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", marker, "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    tail = "\n".join(done.stdout.strip().splitlines()[-40:])
    print(f"backend suite on {arch}:\n{tail}")
    assert done.returncode == 0, f"the backend suite failed on '{arch}':\n{tail}\n{done.stderr[-2000:]}"
