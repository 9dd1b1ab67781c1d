"""torch.autograd.Function bridges over the Taichi kernels (validation, buffers, copies)."""
