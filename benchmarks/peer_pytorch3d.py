"""PyTorch3D as a side-by-side peer: ``rasterize_meshes`` + SoftRas-style blending on its fragments.

Optional: :func:`available` returns None (and the harness prints a note and skips the peer) when
``import pytorch3d`` fails. Install the CPU wheel per ``../shared/peers/README.md``; never a project
dependency.

Fair settings (peers/README.md): ``bin_size=0`` (naive per-pixel loop; CPU has no coarse binning),
``blur_radius = sigma * ln(1/dist_eps - 1)`` (PyTorch3D compares it with the *squared* NDC distance,
like SoftRas's cut), ``perspective_correct=True`` and ``clip_barycentric_coords=True`` (so ``zbuf`` is
SoftRas's depth from clipped barycentrics), ``faces_per_pixel`` doubled until no pixel fills its last
slot (so no face within the cut is dropped). PyTorch3D's +x points left: x is negated on the way in,
which makes its images pixel-aligned with ours. Colours are flat per face (``textures`` with R = 1),
gathered by ``pix_to_face``; ``softmax_rgb_blend`` for ``aggr_func_rgb='softmax'``,
``sigmoid_alpha_blend`` (colour of the nearest fragment) for ``'hard'``; both give SoftRas's
``alpha = 1 - prod(1 - sigmoid(-d/sigma))``.
"""

from __future__ import annotations

import math

import torch


def available() -> str | None:
    """PyTorch3D's version, or None if it cannot be imported."""
    try:
        import pytorch3d
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
    except Exception:  # ImportError, or an ABI mismatch surfacing as OSError/RuntimeError
        return None
    return pytorch3d.__version__


class Peer:
    """Renders ``face_vertices (B, F, 3, 3)`` with flat ``colours (B, F, 3)`` the way PyTorch3D users would."""

    def __init__(self, image_size: int, sigma_val: float, dist_eps: float, gamma_val: float = 1e-4,
                 near: float = 1.0, far: float = 100.0, aggr_func_rgb: str = "softmax", max_k: int = 4096):
        self.image_size = image_size
        self.sigma, self.gamma, self.near, self.far = sigma_val, gamma_val, near, far
        self.blur_radius = sigma_val * math.log(1.0 / dist_eps - 1.0)
        self.rgb = aggr_func_rgb
        self.max_k = max_k
        self.k = None

    def _meshes(self, fv: torch.Tensor):
        from pytorch3d.structures import Meshes

        B, F = fv.shape[:2]
        verts = fv * torch.tensor([-1.0, 1.0, 1.0], dtype=fv.dtype, device=fv.device)  # +x left
        faces = torch.arange(F * 3, device=fv.device).reshape(F, 3)
        return Meshes(verts=list(verts.reshape(B, F * 3, 3)), faces=[faces] * B)

    def _fragments(self, fv: torch.Tensor, k: int):
        from pytorch3d.renderer.mesh.rasterizer import Fragments
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes

        out = rasterize_meshes(
            self._meshes(fv), image_size=self.image_size, blur_radius=self.blur_radius, faces_per_pixel=k,
            bin_size=0, perspective_correct=True, clip_barycentric_coords=True,
        )
        return Fragments(*out)

    def choose_k(self, fv: torch.Tensor, start: int = 8) -> int:
        """Smallest power-of-two ``faces_per_pixel`` (>= start) with no pixel filling its last slot.

        Raises RuntimeError above ``max_k`` (the fragments would need N*H*W*K memory)."""
        k = start
        with torch.no_grad():
            while True:
                frag = self._fragments(fv, k)
                if not bool((frag.pix_to_face[..., -1] >= 0).any()):
                    self.k = k
                    return k
                if 2 * k > self.max_k:
                    raise RuntimeError(f"PyTorch3D needs faces_per_pixel > {self.max_k} here")
                k *= 2

    def render(self, fv: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        """RGBA ``(B, 4, H, W)`` in our pixel layout (row 0 = top, column 0 = left)."""
        from pytorch3d.renderer.blending import BlendParams, sigmoid_alpha_blend, softmax_rgb_blend

        if self.k is None:
            self.choose_k(fv.detach())
        frag = self._fragments(fv, self.k)
        packed = colours.reshape(-1, 3)
        texels = packed[frag.pix_to_face.clamp(min=0)]  # (N, H, W, K, 3); masked by the blends
        params = BlendParams(sigma=self.sigma, gamma=self.gamma, background_color=(0.0, 0.0, 0.0))
        if self.rgb == "softmax":
            img = softmax_rgb_blend(texels, frag, params, znear=self.near, zfar=self.far)
        else:
            img = sigmoid_alpha_blend(texels, frag, params)
        return img.permute(0, 3, 1, 2)

    def fwd_bwd(self, fv: torch.Tensor, colours: torch.Tensor):
        """A closure running forward + backward (ones as the output gradient), like ``common.fwd_bwd``."""
        fv = fv.detach().requires_grad_()
        colours = colours.detach().requires_grad_()

        def run():
            img = self.render(fv, colours)
            img.backward(torch.ones_like(img))

        return run

    def fwd(self, fv: torch.Tensor, colours: torch.Tensor):
        def run():
            with torch.no_grad():
                self.render(fv, colours)

        return run
