import math

import pytest
import torch
import trimesh

from taichi_softras import assets, rotations, shapes


def _trimesh(v, f):
    return trimesh.Trimesh(v.numpy(), f.numpy(), process=False)


@pytest.mark.parametrize(
    "build",
    [
        lambda: shapes.box((0.3, 0.5, 0.7), (0.1, -0.2, 0.3)),
        lambda: shapes.cylinder(0.2, 0.6, 12, axis=(1.0, 1.0, 0.0), center=(0.0, 0.5, 0.0)),
        lambda: shapes.sphere(0.4, 1, center=(0.2, 0.0, 0.0)),
    ],
)
def test_primitives_are_closed_with_outward_winding(build):
    v, f = build()
    assert v.dtype == torch.float32 and f.dtype == torch.int64
    assert v.ndim == 2 and v.shape[1] == 3 and f.ndim == 2 and f.shape[1] == 3
    m = _trimesh(v, f)
    assert m.is_watertight and m.is_winding_consistent
    assert m.volume > 0  # outward normals


def test_primitive_sizes_and_placement():
    v, _ = shapes.box((0.3, 0.5, 0.7), (0.1, -0.2, 0.3))
    torch.testing.assert_close(v.min(0).values, torch.tensor([-0.05, -0.45, -0.05]))
    torch.testing.assert_close(v.max(0).values, torch.tensor([0.25, 0.05, 0.65]))
    v, f = shapes.cylinder(0.2, 0.6, 12, axis=(1.0, 0.0, 0.0))
    assert (v.shape[0], f.shape[0]) == (2 * 12 + 2, 4 * 12)
    torch.testing.assert_close(v[:, 0].abs().max(), torch.tensor(0.3))  # height along x
    torch.testing.assert_close(v[:, 1:].norm(dim=1).max(), torch.tensor(0.2))
    v, f = shapes.sphere(0.4, 1, center=(0.2, 0.0, 0.0))
    assert (v.shape[0], f.shape[0]) == (42, 80)
    torch.testing.assert_close((v - torch.tensor([0.2, 0, 0])).norm(dim=1), torch.full((42,), 0.4))


def test_combine_reindexes_faces():
    a, b = shapes.box(), shapes.box(center=(2.0, 0.0, 0.0))
    v, f = shapes.combine([a, b])
    assert v.shape[0] == 16 and f.shape[0] == 24
    assert f[12:].min() == 8
    torch.testing.assert_close(v[f[12:]], b[0][b[1]])


def test_car_has_body_cabin_and_four_wheels_inside_the_unit_box():
    v, f = assets.car()
    m = _trimesh(v, f)
    assert len(m.split(only_watertight=False)) == 6
    assert m.is_winding_consistent and m.volume > 0
    assert v.abs().max() < 0.5  # fits SoftRas's deformation parametrization (|v| < 1) with room
    assert v[:, 0].max() - v[:, 0].min() == pytest.approx(0.9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(extents=(1.0, 0.0, 1.0)), "extents"),
        (dict(extents=(1.0, 1.0)), "extents"),
        (dict(center=(0.0, 0.0)), "center"),
    ],
)
def test_box_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes.box(**kwargs)


def test_other_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="radius"):
        shapes.cylinder(radius=-1.0)
    with pytest.raises(ValueError, match="sections"):
        shapes.cylinder(sections=2)
    with pytest.raises(ValueError, match="axis"):
        shapes.cylinder(axis=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="parts"):
        shapes.combine([])
    with pytest.raises(ValueError, match="num_bones"):
        assets.chain(num_bones=0)
    with pytest.raises(ValueError, match="hinge_axes"):
        assets.chain(num_bones=3, hinge_axes=[(0, 0, 1)])


def test_axis_angle_matches_quaternion_and_known_rotation():
    torch.manual_seed(0)
    aa = torch.randn(20, 3, dtype=torch.float64)
    angle = aa.norm(dim=1, keepdim=True)
    q = torch.cat([torch.cos(angle / 2), torch.sin(angle / 2) * aa / angle], 1)
    r = rotations.axis_angle_to_matrix(aa)
    torch.testing.assert_close(r, rotations.quaternion_to_matrix(q * 3.0))  # any norm
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(20, 3, 3))
    quarter = rotations.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(quarter @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


def test_axis_angle_gradients_including_zero():
    for aa in (torch.tensor([0.3, -0.2, 0.9]), torch.zeros(3), torch.tensor([1e-6, 0.0, 0.0])):
        aa = aa.double().requires_grad_()
        assert torch.autograd.gradcheck(rotations.axis_angle_to_matrix, (aa,))


def test_rotation_angle_deg():
    aa = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.radians(30.0), 0.0]], dtype=torch.float64)
    r = rotations.axis_angle_to_matrix(aa)
    assert rotations.rotation_angle_deg(r[0], r[1]).item() == pytest.approx(30.0)
    assert rotations.rotation_angle_deg(r[1], r[1]).item() == pytest.approx(0.0, abs=1e-5)


def test_chain_rest_pose_weights_and_watertight_tube():
    rig = assets.chain(num_bones=4)
    m = _trimesh(rig.vertices, rig.faces)
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    torch.testing.assert_close(rig.weights.sum(1), torch.ones(rig.vertices.shape[0]))
    assert (rig.weights >= 0).all()
    torch.testing.assert_close(rig.pose(torch.zeros(4))[0], rig.vertices)


def test_chain_pose_is_rigid_per_bone_and_hinges_at_joints():
    rig = assets.chain(num_bones=3, blend=0.005)
    angles = torch.tensor([0.4, -0.7, 0.5], dtype=torch.float64)
    posed = rig.pose(angles)[0]
    rest = rig.vertices.double()
    # Root rotation only: every vertex turns about joint 0 by R_0.
    root = rig.pose(torch.tensor([0.4, 0.0, 0.0], dtype=torch.float64))[0]
    r0 = rotations.axis_angle_to_matrix(0.4 * rig.hinge_axes[0].double())
    torch.testing.assert_close(root, (rest - rig.joints[0].double()) @ r0.T + rig.joints[0].double())
    # Pairwise distances inside the middle of each bone are preserved (rigid), and the tip moved.
    y, j = rest[:, 1], rig.joints[:, 1].double()
    for k in range(3):
        hi = j[k + 1] if k + 1 < 3 else y.max()
        sel = (y > j[k] + 0.05) & (y < hi - 0.05)
        torch.testing.assert_close(torch.cdist(posed[sel], posed[sel]), torch.cdist(rest[sel], rest[sel]))
    assert (posed - rest).norm(dim=1).max() > 0.1


def test_chain_pose_gradients():
    rig = assets.chain(num_bones=3, rings_per_bone=2, sections=5)
    angles = torch.tensor([0.2, -0.3, 0.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: rig.pose(a), (angles,))
