"""IoU, Laplacian, flatten and edge-length losses."""

import numpy as np
import pytest
import torch
import trimesh

from taichi_softras import DATA_DIR
from taichi_softras.io import load_obj
from taichi_softras.losses import (
    EdgeLengthLoss,
    FlattenLoss,
    IoULoss,
    LaplacianLoss,
    edge_length_loss,
    flatten_loss,
    iou_loss,
    laplacian_loss,
)


@pytest.fixture(scope="module")
def sphere():
    return load_obj(DATA_DIR / "sphere_642.obj")


def test_iou_loss_values():
    a = torch.zeros(2, 4, 4)
    a[:, :2] = 1
    b = torch.zeros(2, 4, 4)
    b[0, :2] = 1  # identical
    b[1, 1:3] = 1  # overlap 4 of union 12
    expected = 1 - (8 / (8 + 1e-6) + 4 / (12 + 1e-6)) / 2
    assert iou_loss(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert IoULoss()(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert iou_loss(a, 1 - a).item() == pytest.approx(1.0)
    assert iou_loss(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)).item() == 1.0  # empty: union guard, no NaN
    with pytest.raises(ValueError, match="shape"):
        iou_loss(a, b[:1])


def test_iou_loss_gradcheck():
    a = torch.rand(2, 3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 3, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: iou_loss(x, b), (a,))


def test_laplacian_matches_softras_dense_matrix(sphere):
    """SoftRas builds L = I - D^-1 A densely; ours scatters over edges. Same values."""
    v, f = sphere
    n = len(v)
    adj = np.zeros((n, n), np.float64)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        adj[f[:, i], f[:, j]] = 1
        adj[f[:, j], f[:, i]] = 1
    lap = np.eye(n) - adj / adj.sum(1, keepdims=True)
    x = torch.randn(3, n, 3, dtype=torch.float64)
    expected = (torch.from_numpy(lap) @ x).pow(2).sum((1, 2))
    loss = LaplacianLoss(v, f)
    assert torch.allclose(loss(x), expected)
    assert torch.allclose(LaplacianLoss(v, f, average=True)(x), expected.mean())
    assert torch.allclose(laplacian_loss(x, f), expected)


def test_laplacian_is_zero_for_a_vertex_at_its_neighbours_mean():
    # A fan: centre vertex 0 at the mean of a regular ring; the ring is not smooth (positive loss).
    ring = [[np.cos(a), np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    v = torch.tensor([[0.0, 0.0, 0.0]] + ring)
    f = torch.tensor([[0, 1 + i, 1 + (i + 1) % 6] for i in range(6)])
    loss = LaplacianLoss(v, f)
    lap0 = v[0] - v[1:].mean(0)
    assert lap0.norm() < 1e-6 and loss(v[None]).item() > 0
    moved = v.clone()
    moved[0, 2] = 1.0
    assert loss(moved[None]).item() - loss(v[None]).item() == pytest.approx(1.0 + 6 * (1 / 3) ** 2, rel=1e-5)


def test_flatten_loss_is_dihedral(sphere):
    """(cos + 1)^2 of the angle between the two heights = (1 - cos(dihedral))^2 for every interior edge."""
    v, f = sphere
    mesh = trimesh.Trimesh(v.numpy().astype(np.float64), f.numpy(), process=False)
    expected = ((1 - np.cos(mesh.face_adjacency_angles)) ** 2).sum()
    got = FlattenLoss(f)(v[None].double(), eps=0.0).item()  # the eps guards matter when cos + 1 ~ 1e-3
    assert got == pytest.approx(expected, rel=1e-6)
    assert flatten_loss(v[None].double(), f).item() == pytest.approx(got, rel=0.1)


def test_flatten_loss_zero_on_a_plane_and_grows_with_folding():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    loss = FlattenLoss(f)
    assert loss(v[None]).item() < 1e-5
    values = []
    for z in (0.2, 0.5, 1.0, 3.0):
        folded = v.clone()
        folded[3, 2] = z
        values.append(loss(folded[None]).item())
    assert values == sorted(values) and values[0] > 1e-4


def test_regularizers_gradcheck():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0.1], [1, 1, 0.3], [0, 1, -0.2], [0.5, 0.5, 0.9]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    x = (v[None] + 0.01 * torch.randn(2, 5, 3, dtype=torch.float64)).requires_grad_(True)
    for loss in (LaplacianLoss(v, f), FlattenLoss(f), EdgeLengthLoss(f), EdgeLengthLoss(f, target_length=0.7)):
        assert torch.autograd.gradcheck(loss, (x,))


def test_edge_length_loss():
    v = torch.tensor([[[0.0, 0, 0], [3, 0, 0], [0, 4, 0]]])
    f = torch.tensor([[0, 1, 2]])
    assert EdgeLengthLoss(f)(v).item() == pytest.approx((9 + 16 + 25) / 3)
    assert edge_length_loss(v, f, target_length=4.0).item() == pytest.approx((1 + 0 + 1) / 3)
    two = torch.cat([v, 2 * v])
    assert torch.allclose(EdgeLengthLoss(f, average=True)(two), EdgeLengthLoss(f)(two).mean())


def test_regularizer_input_checks(sphere):
    v, f = sphere
    with pytest.raises(ValueError, match="faces"):
        FlattenLoss(f[None])
    with pytest.raises(ValueError, match="vertices"):
        LaplacianLoss(v, f)(v)  # unbatched
