"""Copy and clear kernels shared by the ops: flat Taichi fields <-> torch tensors (ndarrays)."""

import taichi as ti


@ti.kernel
def zero(x: ti.template(), n: ti.i32):
    for i in range(n):
        x[i] = 0


@ti.kernel
def zero_each(xs: ti.template(), n: ti.i32):
    """Zero the first n values of every 1-D field in the tuple ``xs`` (one launch for all)."""
    for i in range(n):
        for j in ti.static(range(len(xs))):
            xs[j][i] = 0


@ti.kernel
def zero2(x: ti.template(), n: ti.i32):
    for i, k in ti.ndrange(n, x.shape[1]):
        x[i, k] = 0


@ti.kernel
def load(src: ti.types.ndarray(), dst: ti.template(), n: ti.i32):
    """dst[:n] = src (a contiguous 1-D view)."""
    for i in range(n):
        dst[i] = src[i]


@ti.kernel
def load_rows(src: ti.types.ndarray(), dst: ti.template(), n: ti.i32):
    """dst[:n, :] = src (n, width)."""
    for i, k in ti.ndrange(n, src.shape[1]):
        dst[i, k] = src[i, k]


@ti.kernel
def store(src: ti.template(), dst: ti.types.ndarray(), n: ti.i32):
    for i in range(n):
        dst[i] = src[i]


@ti.kernel
def store_image(out: ti.template(), img: ti.types.ndarray(), P: ti.i32, c0: ti.i32):
    """img (B, C, P) <- out[b*P + p, c0 + c] (one thread per pixel, see ``store_rgba_depth``)."""
    for b, p in ti.ndrange(img.shape[0], P):
        for c in range(img.shape[1]):
            img[b, c, p] = out[b * P + p, c0 + c]


@ti.kernel
def load_image(img: ti.types.ndarray(), out: ti.template(), P: ti.i32, c0: ti.i32):
    """out[b*P + p, c0 + c] <- img (B, C, P) (one thread per pixel)."""
    for b, p in ti.ndrange(img.shape[0], P):
        for c in range(img.shape[1]):
            out[b * P + p, c0 + c] = img[b, c, p]


@ti.kernel
def store_rgba_depth(out: ti.template(), img: ti.types.ndarray(), depth: ti.types.ndarray(), P: ti.i32):
    """img (B, 4, P) <- out[b*P + p, 0:4], depth (B, 1, P) <- out[b*P + p, 4] (one launch; one thread
    per pixel with the channels unrolled: a (B, 5, P) range costs two integer divisions per value)."""
    for b, p in ti.ndrange(img.shape[0], P):
        i = b * P + p
        for c in ti.static(range(4)):
            img[b, c, p] = out[i, c]
        depth[b, 0, p] = out[i, 4]


@ti.kernel
def load_rgba_depth(img: ti.types.ndarray(), depth: ti.types.ndarray(), out: ti.template(), P: ti.i32):
    """out[b*P + p, 0:5] <- img (B, 4, P), depth (B, 1, P) (one launch, one thread per pixel)."""
    for b, p in ti.ndrange(img.shape[0], P):
        i = b * P + p
        for c in ti.static(range(4)):
            out[i, c] = img[b, c, p]
        out[i, 4] = depth[b, 0, p]
