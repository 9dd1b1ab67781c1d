"""The rendering conventions of taichi_softras, stated once.

Every other module imports these constants instead of restating them. They follow SoftRas 1.0
(Liu et al., ICCV 2019) exactly except where noted as a deliberate deviation.

Screen space (input of the rasterizer)
    ``face_vertices`` is ``(B, F, 3, 3)``: per face three vertices with x, y in NDC (y up) and
    z = camera-space depth (> 0 in front of the eye).

Pixel centres
    For an image of H rows and W columns, S = min(H, W):
    column k (left to right) has x_k = (2k + 1 - W) / S, row r (row 0 = top) has
    y_r = (H - 1 - 2r) / S. Pixels are square in NDC: the shorter side spans [-1, 1] and the longer
    one proportionally more (PyTorch3D's rule); for square images this is SoftRas exactly.

Soft coverage
    d^2 is the squared NDC distance from the pixel centre to the triangle's boundary (the nearest of
    the three edge segments), delta = +1 inside (all barycentrics > 0), -1 outside;
    D = sigmoid(delta * d^2 / sigma). With ``dist_func='barycentric'`` d^2 = min_i(w_i)^2 of the
    unclipped barycentrics; with ``'hard'`` D = 1 inside, 0 outside.
    A face takes part in a pixel only when the pixel centre lies in the face's screen box grown by
    sqrt(threshold) (SoftRas's border check, all dist_funcs) and, if outside, d^2 < threshold, with
    threshold = sigma * ln(1 / dist_eps - 1).

Silhouette (aggr_func_alpha)
    'prod': alpha = 1 - prod_f (1 - D_f), computed as 1 - exp(sum_f -softplus(delta d^2 / sigma));
    'sum': sum_f D_f / F; 'hard': 1 if some D_f > 0.5. All non-skipped faces count, front and back,
    at any depth.

Depth
    Barycentrics w are clipped to [0, 1] and divided by their sum (sum clamped to >= 1e-5);
    z_p = 1 / sum_i (w_i / z_i); z_n = (far - z_p) / (far - near). Faces with z_p outside
    [near, far] take no part in colour (they still count in alpha).

Front faces
    A face is front-facing iff (y2 - y0)(x1 - x0) < (y1 - y0)(x2 - x0). With ``fill_back=True`` back
    faces colour too; otherwise only front faces colour.

Colour (aggr_func_rgb)
    'softmax' (soft z-buffer): w_f = D_f exp((z_n,f - m) / gamma), background weight
    w_b = exp((eps - m) / gamma) (the paper's; deliberate deviation from SoftRas's CUDA code),
    m = max(eps, max_f z_n,f) held constant for gradients;
    rgb = (sum_f w_f c_f + w_b bg) / (sum_f w_f + w_b).
    'hard': the colour of the nearest (smallest z_p) colouring face whose interior holds the pixel
    centre, else the background.
    Soft depth: sum_f w_f z_p,f / sum_f w_f, or ``far`` where no face colours the pixel.

Textures
    'surface': ``(B, F, R*R, 3)`` texels; on clipped barycentrics w, w_x = floor(w0 R),
    w_y = floor(w1 R) (each clamped to R - 1, a guard SoftRas lacks for w = 1 exactly); texel
    w_y R + w_x if (1 - w2) R - w_x - w_y <= 1 else (R - 1 - w_y) R + (R - 1 - w_x). SoftRas writes
    (w0 + w1) for (1 - w2): equal in exact arithmetic, but fragments clipped onto the edge w2 = 0 sit
    exactly on that test, where w0 + w1 = 1 +- 1 ulp would pick the texel by rounding.
    'vertex': ``(B, F, 3, 3)`` colours interpolated by the clipped barycentrics.
    'uv': an image ``(B, 3, TH, TW)`` sampled bilinearly at the per-corner UVs ``(B, F, 3, 2)``
    interpolated by the clipped barycentrics; v points up (image row 0 is v = 1), texel centres sit at
    ((i + 0.5) / TW, 1 - (j + 0.5) / TH); outside [0, 1] UVs repeat (default) or clamp.

Guards
    Barycentric determinant clamped away from 0 to +-1e-10; faces with a vertex at z <= 1e-6 (at or
    behind the eye) are culled entirely (deviation: SoftRas renders them mirrored).

Cameras (SoftRas's left-handed frame)
    look_at(eye, at=(0,0,0), up=(0,1,0)): z = normalize(at - eye), x = normalize(up x z),
    y = z x x; camera coordinates = R (v - eye). Perspective: x_ndc = x / (z tan(theta)),
    theta = viewing angle (half-angle across the shorter image side, default 30 degrees).
    Eye from (distance, elevation, azimuth) in degrees: (d cos e sin a, d sin e, -d cos e cos a).
    Because the frame is left-handed, images are mirror images of a right-handed camera's; this is
    kept for compatibility with SoftRas.

Lighting (per face, before rasterization)
    colour * (ambient 0.5 (1, 1, 1) + directional 0.5 relu(n . (0, 1, 0)) (1, 1, 1)), with
    n = normalize(cross(v1 - v0, v2 - v0)) in world space.
"""

SIGMA_VAL = 1e-5
GAMMA_VAL = 1e-4
EPS = 1e-3
DIST_EPS = 1e-4
NEAR = 1.0
FAR = 100.0
IMAGE_SIZE = 256
BACKGROUND_COLOR = (0.0, 0.0, 0.0)

#: Barycentric determinant guard (|det| >= this).
DET_EPS = 1e-10
#: Lower bound on the sum of clipped barycentrics before renormalizing.
BARY_SUM_EPS = 1e-5
#: Faces with any vertex at depth <= this are culled.
Z_CULL = 1e-6
#: Added to the union in the IoU loss.
IOU_EPS = 1e-6

VIEWING_ANGLE = 30.0
CAMERA_DISTANCE = 2.732

DIST_FUNCS = ("euclidean", "barycentric", "hard")
AGGR_FUNCS_ALPHA = ("prod", "sum", "hard")
AGGR_FUNCS_RGB = ("softmax", "hard")
TEXTURE_TYPES = ("surface", "vertex")
#: The rasterizer also samples UV image maps in the kernel (Mesh and lighting stay SoftRas's two).
RASTER_TEXTURE_TYPES = TEXTURE_TYPES + ("uv",)
TEXTURE_WRAPS = ("repeat", "clamp")

#: The settings the kernels switch on at compile time; a value's kernel code is its index here.
MODE_TABLES = {
    "dist_func": DIST_FUNCS,
    "aggr_func_alpha": AGGR_FUNCS_ALPHA,
    "aggr_func_rgb": AGGR_FUNCS_RGB,
    "texture_type": RASTER_TEXTURE_TYPES,
    "texture_wrap": TEXTURE_WRAPS,
}


#: Channels of the auxiliary per-pixel buffer (op, kernels and reference): name -> (first, count).
AUX_CHANNELS = {"barycentrics": (0, 3), "normals": (3, 3), "screen_normals": (6, 3)}
AUX_WIDTH = 9


def code(setting: str, name: str) -> int:
    """The kernels' integer code of ``name`` for ``setting`` (e.g. ``code("dist_func", "hard")``)."""
    return MODE_TABLES[setting].index(name)

LIGHT_INTENSITY_AMBIENT = 0.5
LIGHT_COLOR_AMBIENT = (1.0, 1.0, 1.0)
LIGHT_INTENSITY_DIRECTIONALS = 0.5
LIGHT_COLOR_DIRECTIONALS = (1.0, 1.0, 1.0)
LIGHT_DIRECTIONS = (0.0, 1.0, 0.0)


def dist_threshold(sigma_val: float, dist_eps: float) -> float:
    """Squared NDC distance beyond which an outside face is skipped: sigma * ln(1/dist_eps - 1)."""
    import math

    return sigma_val * math.log(1.0 / dist_eps - 1.0)


def pixel_centres(height: int, width: int):
    """NDC centres of the pixel columns and rows: ``(xs (W,), ys (H,))`` as Python float lists."""
    s = min(height, width)
    xs = [(2 * k + 1 - width) / s for k in range(width)]
    ys = [(height - 1 - 2 * r) / s for r in range(height)]
    return xs, ys
