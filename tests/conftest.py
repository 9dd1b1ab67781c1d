import os

# torch's idle OpenMP threads otherwise spin against Taichi's kernels (read when OpenMP starts).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

from taichi_softras import runtime  # noqa: E402

# Every run draws the same hypothesis examples (seeded from each test's source), so a test that
# passes once passes again; no example database, no deadline (Taichi compiles on first use).
# HYPOTHESIS_PROFILE=explore draws fresh random examples, for hunting bugs by hand.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", parent=settings.get_profile("repeatable"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_collection_modifyitems(config, items):
    """CUDA tests need a GPU and a process whose Taichi runs on CUDA (TAICHI_SOFTRAS_ARCH=cuda)."""
    cuda_ok = torch.cuda.is_available() and os.environ.get("TAICHI_SOFTRAS_ARCH", "") == "cuda"
    for item in items:
        if "cuda" in item.keywords and not cuda_ok:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU and TAICHI_SOFTRAS_ARCH=cuda"))


@pytest.fixture(scope="session", autouse=True)
def taichi_runtime():
    """One Taichi runtime per test process (never ti.init in a test)."""
    return runtime.ensure_initialized()


@pytest.fixture(scope="session")
def device():
    """The torch device matching the process's Taichi arch."""
    return torch.device("cuda" if runtime.active_arch() == "cuda" else "cpu")


@pytest.fixture
def float64_raster():
    """Skip on backends whose rasterizer cannot run float64 (e.g. Vulkan: no 64-bit exp/log)."""
    runtime.ensure_initialized()
    try:
        runtime.require_float64("float64 inputs to soft_rasterize", transcendentals=True)
    except TypeError as exc:
        pytest.skip(str(exc))
