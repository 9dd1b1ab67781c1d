"""Each SoftRas convention pinned by its own test (taichi_softras/conventions.py)."""

import math

import pytest
import torch

from taichi_softras import conventions as C
from taichi_softras import soft_rasterize


def tri(*pts, dtype=torch.float64):
    """One face (1, 1, 3, 3) from three (x, y, z) points."""
    return torch.tensor([[list(pts)]], dtype=dtype)


def flat(r=1.0, g=1.0, b=1.0, faces=1, dtype=torch.float64):
    return torch.tensor([r, g, b], dtype=dtype).expand(1, faces, 1, 3).contiguous()


def test_triangle_in_top_right_quadrant_lights_top_right_pixels():
    fv = tri((0.1, 0.1, 2.0), (0.9, 0.1, 2.0), (0.1, 0.9, 2.0))
    alpha = soft_rasterize(fv, flat(), image_size=16)[0, 3]
    assert alpha[:8, 8:].sum() > 10  # rows 0-7 = top, columns 8-15 = right
    assert alpha[8:, :].max() == 0 and alpha[:, :8].max() == 0


@pytest.mark.parametrize("hw", [(8, 8), (6, 10), (10, 6)])
def test_pixel_centres(hw):
    """An edge through a pixel centre gives alpha exactly 0.5 there (d^2 = 0, D = sigmoid(0))."""
    h, w = hw
    s = min(h, w)
    k, r = 2, 3
    xk = (2 * k + 1 - w) / s
    yr = (h - 1 - 2 * r) / s
    xs, ys = C.pixel_centres(h, w)
    assert xs[k] == pytest.approx(xk) and ys[r] == pytest.approx(yr)
    # Vertical edge at x = xk, the face extending to the right: left of it nothing, right covered.
    fv = tri((xk, -5.0, 2.0), (xk + 20, 5.0, 2.0), (xk, 5.0, 2.0))
    alpha = soft_rasterize(fv, flat(), image_size=(h, w), sigma_val=1e-6)[0, 3]
    assert torch.allclose(alpha[:, k], torch.full((h,), 0.5, dtype=alpha.dtype))
    assert alpha[:, k + 1 :].min() > 0.99 and alpha[:, :k].max() < 1e-6
    # Horizontal edge at y = yr, face above it.
    fv = tri((-5.0, yr, 2.0), (5.0, yr, 2.0), (5.0, yr + 20, 2.0))
    alpha = soft_rasterize(fv, flat(), image_size=(h, w), sigma_val=1e-6)[0, 3]
    assert torch.allclose(alpha[r, :], torch.full((w,), 0.5, dtype=alpha.dtype))
    assert alpha[:r].min() > 0.99 and alpha[r + 1 :].max() < 1e-6


def test_alpha_cut_at_dist_eps_threshold():
    """Outside a face, coverage stops exactly where d^2 reaches sigma ln(1/dist_eps - 1)."""
    sigma, dist_eps = 1e-3, 1e-4
    radius = math.sqrt(C.dist_threshold(sigma, dist_eps))
    x0 = 1.0 / 8  # centre of column 4 of an 8-wide image
    for gap, covered in [(0.999 * radius, True), (1.001 * radius, False)]:
        edge = x0 + gap  # the face starts `gap` to the right of the pixel centre
        fv = tri((edge, -5.0, 2.0), (edge + 20, 5.0, 2.0), (edge, 5.0, 2.0))
        alpha = soft_rasterize(fv, flat(), image_size=8, sigma_val=sigma, dist_eps=dist_eps)[0, 3]
        if covered:
            expected = 1 / (1 + math.exp(gap**2 / sigma))
            assert alpha[4, 4].item() == pytest.approx(expected, rel=1e-9)
            assert expected == pytest.approx(dist_eps, rel=0.05)
        else:
            assert alpha[4, 4].item() == 0.0


def test_front_back_and_fill_back():
    # Clockwise on screen (y up) is front-facing: SoftRas's left-handed camera mirrors the image, so
    # a CCW (outward) world triangle facing the camera lands clockwise on screen.
    front = tri((-0.5, -0.5, 2.0), (0.0, 0.5, 2.0), (0.5, -0.5, 2.0))
    back = front[:, :, [0, 2, 1]]
    col = flat(1.0, 0.0, 0.0)
    for fv, is_front in [(front, True), (back, False)]:
        x = fv[0, 0]
        rule = (x[2, 1] - x[0, 1]) * (x[1, 0] - x[0, 0]) < (x[1, 1] - x[0, 1]) * (x[2, 0] - x[0, 0])
        assert bool(rule) == is_front
        on = soft_rasterize(fv, col, image_size=8, fill_back=True)
        off = soft_rasterize(fv, col, image_size=8, fill_back=False)
        assert torch.equal(on[0, 3], off[0, 3])  # alpha counts every face
        assert on[0, 0, 4, 4] > 0.99
        assert (off[0, 0, 4, 4] > 0.99) == is_front


@pytest.mark.parametrize("z, colours", [(0.5, False), (2.0, True), (150.0, False)])
def test_near_far_exclusion(z, colours):
    fv = tri((-0.9, -0.9, z), (0.9, -0.9, z), (0.0, 0.9, z))
    img, depth = soft_rasterize(fv, flat(0.0, 1.0, 0.0), image_size=8, near=1.0, far=100.0, return_depth=True)
    assert img[0, 3, 4, 4] > 0.99  # alpha: any depth
    assert (img[0, 1, 4, 4] > 0.99) == colours
    assert depth[0, 0, 4, 4].item() == pytest.approx(z if colours else 100.0)


def test_perspective_correct_depth():
    """Depth interpolates 1/z linearly in screen space."""
    fv = tri((-1.0, -1.0, 1.0), (3.0, -1.0, 4.0), (-1.0, 3.0, 1.0))
    _, depth = soft_rasterize(fv, flat(), image_size=4, return_depth=True, gamma_val=1e-2)
    x, y = 0.25, -0.25  # pixel (row 2, col 2)
    w1 = (x + 1) / 4  # barycentric of the far vertex
    w0 = 1 - w1 - (y + 1) / 4
    w2 = 1 - w0 - w1
    assert depth[0, 0, 2, 2].item() == pytest.approx(1 / (w0 / 1.0 + w1 / 4.0 + w2 / 1.0), rel=1e-9)


def test_culled_faces_behind_the_eye_render_nothing():
    fv = tri((-0.5, -0.5, -1.0), (0.5, -0.5, 2.0), (0.0, 0.5, 2.0))
    fv.requires_grad_()
    img = soft_rasterize(fv, flat(), image_size=8)
    assert img.abs().sum() == 0
    img.sum().backward()
    assert torch.isfinite(fv.grad).all()


def test_hard_rgb_takes_the_nearest_face():
    near = tri((-0.9, -0.9, 2.0), (0.9, -0.9, 2.0), (0.0, 0.9, 2.0))
    far_ = tri((-0.9, -0.9, 3.0), (0.9, -0.9, 3.0), (0.0, 0.9, 3.0))
    fv = torch.cat([far_, near], dim=1)
    tex = torch.tensor([[[[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]]]], dtype=torch.float64)
    img = soft_rasterize(fv, tex, image_size=8, aggr_func_rgb="hard")
    assert img[0, :3, 4, 4].tolist() == [1.0, 0.0, 0.0]
    assert img[0, :3, 0, 0].tolist() == [0.0, 0.0, 0.0]


def test_softmax_background_weight_is_the_papers():
    """One face at z_n = m: rgb = D c / (D + exp((eps - m)/gamma))."""
    z, gamma, eps, sigma = 50.5, 0.05, 1e-3, 1e-2
    fv = tri((-0.9, -0.9, z), (0.9, -0.9, z), (0.0, 0.9, z))
    img = soft_rasterize(fv, flat(), image_size=8, gamma_val=gamma, sigma_val=sigma, eps=eps)
    m = (100.0 - z) / 99.0
    D = img[0, 3, 4, 4].item()  # single face: alpha = D
    expected = D / (D + math.exp((eps - m) / gamma))
    assert img[0, 0, 4, 4].item() == pytest.approx(expected, rel=1e-9)


def test_non_square_image_is_a_crop_of_the_square_one():
    """(48, 64) render == rows 8..55 of a 64x64 render with NDC x, y scaled by 48/64 and sigma by (48/64)^2."""
    torch.manual_seed(3)
    # float64: in float32 a fragment right at the cut can flip in or out, and such a lone fragment
    # carries the whole pixel's colour (the softmax normalizes it), so RGB would jump.
    fv = torch.rand(1, 30, 3, 3, dtype=torch.float64) * 1.6 - 0.8
    fv[..., 2] = torch.rand(1, 30, 3, dtype=torch.float64) * 2 + 2
    tex = torch.rand(1, 30, 4, 3, dtype=torch.float64)
    sigma = 1e-4
    wide = soft_rasterize(fv, tex, image_size=(48, 64), sigma_val=sigma)
    scaled = fv.clone()
    scaled[..., :2] *= 48 / 64
    square = soft_rasterize(scaled, tex, image_size=64, sigma_val=sigma * (48 / 64) ** 2)
    assert torch.allclose(wide, square[:, :, 8:56], atol=1e-4)


def test_surface_texel_layout():
    """R = 2: the four texels sit at SoftRas's barycentric cells."""
    fv = tri((-1.0, -1.0, 2.0), (1.0, -1.0, 2.0), (-1.0, 1.0, 2.0))
    tex = torch.tensor([[[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]]], dtype=torch.float64)
    img = soft_rasterize(fv, tex, image_size=32, sigma_val=1e-7, aggr_func_rgb="hard")
    xs, ys = C.pixel_centres(32, 32)

    def expected(row, col):
        # w0 weights vertex 0 (-1,-1), w1 vertex 1 (1,-1), w2 vertex 2 (-1, 1)
        x, y = xs[col], ys[row]
        w1, w2 = (x + 1) / 2, (y + 1) / 2
        w0 = 1 - w1 - w2
        wx, wy = min(int(w0 * 2), 1), min(int(w1 * 2), 1)
        k = wy * 2 + wx if (w0 + w1) * 2 - wx - wy <= 1 else (1 - wy) * 2 + (1 - wx)
        return tex[0, 0, k].tolist()

    for row, col in [(28, 3), (28, 14), (16, 3), (20, 8), (30, 1)]:
        assert img[0, :3, row, col].tolist() == expected(row, col)
