"""Dense pure-torch anchor-ray probing: the specification :func:`taichi_softras.ops.probe.probe_rays`
is held to. Every (ray, anchor) pair is tested, O(B R N) work, in chunks of rays to bound memory."""

from __future__ import annotations

import torch

from ..spec import ProbeResult, check_probe_args


def probe_rays(
    origins: torch.Tensor,
    directions: torch.Tensor,
    anchors: torch.Tensor,
    radius: float | torch.Tensor,
    values: torch.Tensor,
    *,
    ray_labels: torch.Tensor | None = None,
    anchor_labels: torch.Tensor | None = None,
    chunk: int = 256,
) -> ProbeResult:
    """Same contract as :func:`taichi_softras.ops.probe.probe_rays` (shapes, ties to the smallest
    anchor index, 0 and -1 for rays without probes); differentiable w.r.t. ``values``."""
    radius = check_probe_args(origins, directions, anchors, radius, values, ray_labels, anchor_labels)
    b, r = origins.shape[:2]
    n = anchors.shape[1]
    index, count = [], []
    for s in range(0, r, chunk):
        o, d = origins[:, s : s + chunk, None, :], directions[:, s : s + chunk, None, :]
        q = anchors[:, None, :, :] - o  # (B, r, N, 3)
        t = (q * d).sum(-1)
        perp = q - t[..., None] * d
        hit = (t > 0) & ((perp * perp).sum(-1) < radius[:, None, :] ** 2)
        if ray_labels is not None:
            hit &= ray_labels[:, s : s + chunk, None].long() == anchor_labels[:, None, :].long()
        masked = torch.where(hit, values.detach()[:, None, :], -torch.inf)
        best = masked.max(-1, keepdim=True).values if n else masked.sum(-1, keepdim=True)
        # first (smallest) anchor index holding the max
        first = (hit & (masked == best)).int().argmax(-1) if n else torch.zeros_like(best[..., 0]).long()
        c = hit.sum(-1)
        index.append(torch.where(c > 0, first, -1))
        count.append(c)
    index = torch.cat(index, 1) if r else torch.zeros(b, 0, dtype=torch.int64, device=origins.device)
    count = torch.cat(count, 1) if r else torch.zeros(b, 0, dtype=torch.int64, device=origins.device)
    if n == 0:
        return ProbeResult(values.new_zeros(b, r), index, count)
    value = torch.where(index >= 0, values.gather(1, index.clamp(min=0)), values.new_zeros(()))
    return ProbeResult(value, index, count)
