"""Render a mesh (default: the bundled Spot cow with its UV texture) to an RGBA PNG.

    python -m taichi_softras --out spot.png [--mesh PATH] [--image-size 512] [--azimuth -45]
        [--elevation 30] [--distance 2.732] [--sigma 1e-5] [--gamma 1e-4] [--texture-res 8]

A look-at camera (SoftRas's conventions) at (distance, elevation, azimuth) looks at the origin.
Mistakes in the arguments or the mesh file end with one ``error:`` line and exit status 2
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
from PIL import Image

from . import cli_kit
from .cli_kit import UserError

PROG = "python -m taichi_softras"


def render_png(mesh_path, out, image_size=512, azimuth=-45.0, elevation=30.0, distance=2.732,
               sigma=1e-5, gamma=1e-4, texture_res=8, anti_aliasing=True) -> np.ndarray:
    """Render ``mesh_path`` with a look_at camera and write an RGBA PNG; returns the uint8 image (H, W, 4)."""
    import taichi_softras as sr

    mesh = sr.Mesh.from_obj(mesh_path, load_texture=True, texture_res=texture_res)
    renderer = sr.SoftRenderer(
        image_size=image_size, sigma_val=sigma, gamma_val=gamma, camera_mode="look_at",
        anti_aliasing=anti_aliasing,
    )
    renderer.transform.set_eyes_from_angles(distance, elevation, azimuth)
    rgba = renderer.render_mesh(mesh)[0].detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    image = (rgba * 255 + 0.5).astype(np.uint8)
    Image.fromarray(image, "RGBA").save(out)
    return image


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    import taichi_softras as sr

    positive, count = cli_kit.positive_float, cli_kit.positive_int
    angle = cli_kit.number(float, "a number of degrees")
    p = cli_kit.Parser(prog=prog, description=__doc__)
    p.add_argument("--mesh", type=pathlib.Path, default=sr.DATA_DIR / "spot" / "spot_triangulated.obj",
                   help="OBJ file to render (its MTL's map_Kd texture is used when present)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("spot.png"), help="PNG file to write")
    p.add_argument("--image-size", type=count, default=512, help="image side, pixels")
    p.add_argument("--azimuth", type=angle, default=-45.0, help="camera azimuth, degrees")
    p.add_argument("--elevation", type=angle, default=30.0, help="camera elevation, degrees")
    p.add_argument("--distance", type=positive, default=2.732, help="camera distance from the origin, world units")
    p.add_argument("--sigma", type=positive, default=1e-5, help="SoftRas sigma: edge blur, squared NDC units")
    p.add_argument("--gamma", type=positive, default=1e-4, help="SoftRas gamma: depth softness of the colour blend")
    p.add_argument("--texture-res", type=count, default=8, help="texels per face side")
    p.add_argument("--no-anti-aliasing", action="store_true", help="render at the image size (no 2x supersampling)")
    cli_kit.add_debug(p)
    return p


def _check_paths(a: argparse.Namespace) -> None:
    if not a.mesh.is_file():
        raise UserError(f"--mesh {a.mesh}: no such file")
    if a.out.suffix.lower() != ".png":
        raise UserError(f"--out {a.out}: expected a .png file name")
    if not a.out.parent.is_dir():
        raise UserError(f"--out {a.out}: the folder {a.out.parent} does not exist")


def main(argv=None, prog: str = PROG) -> int:
    """The command line; returns the exit status (0, or 2 after a one-line ``error:`` on stderr).
    ``prog`` names the command in the usage and error lines (``taichi-softras render`` runs this too)."""
    return cli_kit.run(prog, lambda argv: _render(argv, prog), argv, exit=False)


def _render(argv, prog: str) -> int:
    a = build_parser(prog).parse_args(argv)
    _check_paths(a)
    start = time.perf_counter()
    try:
        image = render_png(a.mesh, a.out, a.image_size, a.azimuth, a.elevation, a.distance, a.sigma, a.gamma,
                           a.texture_res, not a.no_anti_aliasing)
    except OSError as e:
        raise UserError(f"{e.filename or a.out}: {e.strerror or e}") from e
    except ValueError as e:  # the library's argument and file checks
        raise UserError(f"--mesh {a.mesh}: {e}") from e
    seconds = time.perf_counter() - start
    coverage = float((image[..., 3] > 127).mean())
    print(f"wrote {a.out} ({image.shape[1]}x{image.shape[0]} RGBA, {a.mesh.name}, {coverage:.0%} of pixels covered, "
          f"{seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
