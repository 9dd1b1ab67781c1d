"""The training objectives of the three models and the voxel model's level calibration.

* :class:`MeshObjective`: SoftRas's silhouette IoU loss (+ Laplacian, flatten, colour L1).
* :class:`ImplicitObjective`: the NeurIPS'19 anchor-ray probing loss + geometric regularizer.
* :class:`VoxelObjective`: the 3D-supervised baseline's voxel cross-entropy.

Each is called as ``objective(net, img_a, img_b, view_a, view_b, generator, shape_idx)`` and returns
its loss terms, ``"loss"`` the total.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taichi_softras.implicit import geometric_regularizer, silhouette_loss
from taichi_softras.losses import FlattenLoss, LaplacianLoss, iou_loss
from taichi_softras.ops.probe import probe_view
from taichi_softras.sampling import hull_band, sample_contour_pixels, sample_hull_boundary, visual_hull

from . import datasets as D
from .config import TrainConfig
from .render import render
from .voxels import voxel_iou


def extra_views(cfg_views: int, data: D.ShapeNetSplit, shape_idx, view_a, generator, device):
    """``cfg_views - 2`` more random views per shape beyond a and b: (view ids, float RGBA images)
    lists, one entry per extra view."""
    ids = [torch.randint(0, D.NUM_VIEWS, view_a.shape, generator=generator) for _ in range(cfg_views - 2)]
    return [v.to(device) for v in ids], [data.views(shape_idx, v).to(device) for v in ids]


class MeshObjective:
    """SoftRas's loss: silhouette IoU in views a and b (and ``mesh_views - 2`` more random views)
    + Laplacian + flatten (+ colour L1 for the full model), for the mesh predicted from view a."""

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, data: D.ShapeNetSplit | None = None):
        self.cfg, self.data = cfg, data
        dec = model.decoder
        self.laplacian = LaplacianLoss(dec.vertices_base, dec.faces)
        self.flatten = FlattenLoss(dec.faces)

    def __call__(self, net, img_a, img_b, view_a, view_b, generator, shape_idx) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        vertices, faces, colours = net(img_a)
        views, targets = [view_a, view_b], [img_a, img_b]
        if cfg.mesh_views > 2:
            more_views, more_images = extra_views(cfg.mesh_views, self.data, shape_idx, view_a, generator, img_a.device)
            views, targets = views + more_views, targets + more_images
        k = len(views)
        each = lambda t: None if t is None else t.repeat(k, *(1,) * (t.dim() - 1))  # noqa: E731
        rgba = render(each(vertices), each(faces), torch.cat(views), each(colours), lit=False,
                      image_size=cfg.render_size, sigma_val=cfg.sigma_val, aggr_func_rgb="hard", dist_eps=1e-10)
        target = torch.cat(targets)
        if cfg.render_size != target.shape[-1]:  # targets at the render resolution (area average)
            target = F.avg_pool2d(target, target.shape[-1] // cfg.render_size)
        terms = {
            # SoftRas's sum of the IoU losses of views a and b: twice their mean, over all k views
            "silhouette": 2 * iou_loss(rgba[:, 3], target[:, 3]),
            "laplacian": self.laplacian(vertices).mean(),
            "flatten": self.flatten(vertices).mean(),
        }
        loss = terms["silhouette"] + cfg.lambda_laplacian * terms["laplacian"] + cfg.lambda_flatten * terms["flatten"]
        if colours is not None:
            mask = target[:, 3:]
            terms["colour"] = ((rgba[:, :3] - target[:, :3]).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1)
            loss = loss + cfg.lambda_colour * terms["colour"]
        terms["loss"] = loss
        return terms


#: Finite-difference step of the geometric regularizer (about half a voxel) and the width of its
#: smooth surface band W(phi) = exp(-((phi - 0.5) / band)^2).
FD_STEP = 1.0 / 64
SURFACE_BAND = 0.15


#: Resolution of the visual hulls the implicit model's anchors are drawn near, and the width (in
#: voxels) of the band around their boundary the anchors are drawn in.
HULL_RESOLUTION = 32
HULL_BAND = 1


def dataset_hulls(images: torch.Tensor, resolution: int = HULL_RESOLUTION, chunk: int = 128) -> torch.Tensor:
    """Visual hulls ``(N, res, res, res)`` bool ([x, y, z]) of the dataset shapes' 24 silhouettes
    (images uint8 ``(N, 24, 4, H, W)``): :func:`taichi_softras.sampling.visual_hull` of ``chunk``
    shapes at a time (each grid centre is projected into the 24 fixed cameras once per chunk)."""
    eyes = D.view_eyes(torch.arange(images.shape[1]))
    return torch.cat([visual_hull(part[:, :, 3].float() / 255, eyes, resolution, viewing_angle=D.VIEWING_ANGLE)
                      for part in images.split(chunk)])


class ImplicitObjective:
    """The NeurIPS'19 loss: anchor-ray probing (max pooling, boundary-aware) of views a, b and
    ``probe_views - 2`` more, rays importance-sampled near the silhouette contours and anchors near
    the visual-hull boundary (hulls precomputed from each shape's 24 silhouettes), + the
    finite-difference normal-consistency regularizer on samples weighted towards the surface."""

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, data: D.ShapeNetSplit):
        self.cfg, self.model, self.data = cfg, model, data
        self.hulls = dataset_hulls(data.images, HULL_RESOLUTION)
        self._bands: dict[int, torch.Tensor] = {}

    def band(self, i: int) -> torch.Tensor:
        """Shape ``i``'s hull band (:func:`taichi_softras.sampling.hull_band`), computed once."""
        if i not in self._bands:
            self._bands[i] = hull_band(self.hulls[i], HULL_BAND)
        return self._bands[i]

    def __call__(self, net, img_a, img_b, view_a, view_b, generator, shape_idx) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        anchors = torch.stack([sample_hull_boundary(self.hulls[i], cfg.num_anchors, band=HULL_BAND, generator=generator,
                                                    band_mask=self.band(i))[0]
                               for i in shape_idx.tolist()]).to(img_a)
        values, code = net(img_a, anchors, return_code=True)
        b = code.shape[0]

        def field(points: torch.Tensor) -> torch.Tensor:  # (B * P, 3), shape-major -> (B * P,)
            return self.model.field(code, points.reshape(b, -1, 3)).reshape(-1)

        # the regularizer's field calls reuse the code of the (DistributedDataParallel) forward above
        geo = geometric_regularizer(field, anchors[:, : cfg.num_regularizer].reshape(-1, 3), delta=FD_STEP,
                                    band=SURFACE_BAND, smooth=True)

        # probing is cheap next to the field, so extra views add supervision almost for free
        more_views, more_images = extra_views(cfg.probe_views, self.data, shape_idx, view_a, generator, img_a.device)
        views = [view_a, view_b] + more_views
        sil = torch.cat([img_a[:, 3], img_b[:, 3]] + [im[:, 3] for im in more_images])
        k = len(views)
        pixels, _ = sample_contour_pixels(sil, cfg.num_rays, generator=generator)
        probe = probe_view(D.view_eyes(torch.cat(views)).to(img_a), anchors.repeat(k, 1, 1),
                           cfg.anchor_radius, values.repeat(k, 1), D.IMAGE_SIZE, pixels=pixels,
                           silhouettes=sil, boundary_aware=True, viewing_angle=D.VIEWING_ANGLE)
        label = (sil.flatten(1).gather(1, pixels) > 0.5).to(probe.value.dtype)
        probing = silhouette_loss(probe.value, label, kind="bce")
        return {"probing": probing, "geometric": geo, "loss": probing + cfg.lambda_geometric * geo}


class VoxelObjective:
    """The 3D-supervised baseline's loss: binary cross-entropy of the voxel logits predicted from
    view a against the true voxels (view b is unused)."""

    def __init__(self, cfg: TrainConfig, data: D.ShapeNetSplit):
        self.data = data

    def __call__(self, net, img_a, img_b, view_a, view_b, generator, shape_idx) -> dict[str, torch.Tensor]:
        logits = net(img_a)
        target = self.data.voxels[shape_idx].to(logits)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return {"bce": bce, "loss": bce}


@torch.no_grad()
def calibrate_voxel_level(model: torch.nn.Module, data: D.ShapeNetSplit, max_shapes: int = 128) -> float:
    """Set the voxel model's ``level`` to the probability threshold in {0.1, ..., 0.9} with the best
    mean IoU on (up to ``max_shapes`` of) the training shapes; returns it."""
    was_training = model.training
    model.eval()
    idx = torch.linspace(0, len(data) - 1, min(max_shapes, len(data))).long()
    device = next(model.parameters()).device
    probs = torch.cat([torch.sigmoid(model(data.views(chunk, chunk % D.NUM_VIEWS).to(device))).cpu()
                       for chunk in idx.split(32)])
    levels = torch.arange(1, 10) / 10
    scores = [voxel_iou(probs > t, data.voxels[idx]).mean().item() for t in levels]
    model.level.fill_(levels[int(torch.tensor(scores).argmax())].item())
    model.train(was_training)
    return model.level.item()
