"""The same agreement checks on ti.cuda. Run in their own process on a GPU machine:

    TAICHI_SOFTRAS_ARCH=cuda pytest -m cuda
"""

import pytest
import torch

from taichi_softras import runtime, soft_rasterize
from taichi_softras.reference.rasterize import soft_rasterize as reference

from test_rasterize_agreement import random_scene

pytestmark = pytest.mark.cuda


def test_runs_on_cuda():
    assert runtime.ensure_initialized(torch.device("cuda")) == "cuda"


@pytest.mark.parametrize("seed", range(8))
def test_cuda_forward_and_gradients_match_reference(seed):
    fv, tex, kw = random_scene(seed)
    dev = torch.device("cuda")
    a = [t.to(dev).requires_grad_() for t in (fv, tex)]
    r = [t.clone().requires_grad_() for t in (fv, tex)]
    img, depth = soft_rasterize(*a, **kw)
    rimg, rdepth = reference(*r, **kw)
    assert img.device.type == "cuda"
    assert (img.cpu() - rimg).abs().max() <= 1e-9 and (depth.cpu() - rdepth).abs().max() <= 1e-9
    w = torch.rand(rimg.shape, dtype=fv.dtype)
    (img * w.to(dev)).sum().backward()
    (rimg * w).sum().backward()
    for x, y in zip(a, r):
        assert ((x.grad.cpu() - y.grad).norm() / y.grad.norm().clamp_min(1e-30)) <= 1e-6


def test_cuda_op_boundary_syncs_with_torch_stream():
    """Work queued by torch right before the op (on its current stream) is seen by the kernels."""
    fv, tex, kw = random_scene(0, dtype=torch.float32)
    dev = torch.device("cuda")
    big = torch.randn(4096, 4096, device=dev)
    fv_dev = torch.empty_like(fv, device=dev)
    for _ in range(3):
        big = big @ big.T / 4096  # keep the stream busy
    fv_dev.copy_(fv.to(dev), non_blocking=True)
    img = soft_rasterize(fv_dev, tex.to(dev), **kw)[0]
    expected = reference(fv.double(), tex.double(), **kw)[0]
    assert (img.cpu().double() - expected).abs()[:, 3].max() <= 1e-5
