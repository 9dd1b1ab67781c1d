"""Interactive gradient visualization: where the soft rasterizer's gradients go, and how far.

A mesh (default: a sphere) is compared with a target image (default: the procedural car, seen from
the same camera) by a per-pixel RGBA squared error. Image panels:

1. the render (or, toggled, the target),
2. the per-pixel loss,
3. dL/dv for every vertex, projected to 2D arrows (descent direction) coloured by magnitude,
4. for one picked vertex, each pixel's share of its gradient, |d L_pixel / d v| (central
   differences in float64; their sum matches the autodiff gradient, printed as a cosine).

The GGUI window (``--ui ggui``, default where Vulkan works) adds an orbitable 3D view: the mesh
coloured by |dL/dv|, the descent directions as 3D arrows, the target as a red wireframe and the
render's camera in yellow. Blur (sigma) and depth softness (gamma) decide how far gradients reach:
raise them and arrows appear on occluded faces and far from the silhouette.

Windows: click a vertex (3D view or image panels) to pick it, drag the 3D view to orbit; ``g`` one
gradient step, ``space`` run/stop, ``r`` reset, ``t`` render/target in panel 1, ``esc`` quit;
sliders for log10 sigma, log10 gamma and the camera. Headless: ``panels.png`` (matplotlib), the
four panels as PNGs, ``steps.gif``, ``loss.png`` and ``summary.json`` after ``--steps`` steps.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from demo_kit import cli, images, plots
from demo_kit.gradient_scene import CAMERA_COLOR, REACH, SHARE_DECADES, TARGET_COLOR, GradientScene, Session, gradient_colors, reached
from taichi_softras import DATA_DIR

DARK, LIGHT = (51, 51, 51), images.WHITE  # window background, text


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("gradients", __doc__, image_size=96, sigma=1e-4, gamma=1e-4, front_ends=cli.UIS)
    p.add_argument("--mesh", type=str, default=str(DATA_DIR / "sphere_642.obj"), help="OBJ to optimize")
    p.add_argument("--scale", type=cli.positive_float, default=0.5, help="scale applied to --mesh")
    p.add_argument("--target", type=str, default=None, help="target OBJ (None: the procedural car)")
    p.add_argument("--elevation", type=cli.finite_float, default=30.0, help="camera elevation, degrees")
    p.add_argument("--azimuth", type=cli.finite_float, default=-45.0, help="camera azimuth, degrees")
    p.add_argument("--lr", type=cli.positive_float, default=0.01, help="Adam step size of the vertices")
    p.add_argument("--steps", type=cli.count, default=20, help="headless: gradient steps to take")
    p.add_argument("--vertex", type=int, default=None, help="vertex to analyse (None: the largest gradient)")
    return p


PANELS = ("render", "loss", "arrows", "share")  # the 2 x 2 grid, row by row


def compose(state: dict, scene: GradientScene, show_target: bool, side: int, fg=LIGHT, bg=DARK
            ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, tuple[int, int]], float]:
    """The four titled image panels, each image ``side`` pixels square with its colour bar beside it.

    Returns the 2 x 2 grid (uint8), the panels by name, where each panel's image starts in the grid
    (x, y) and the zoom (display pixels per image pixel)."""
    zoom = side / scene.image_size
    at = (state["start"] + 0.5) * zoom  # vertices at display coordinates (pixel centres)
    m = reached(state)

    def show(image: np.ndarray) -> np.ndarray:
        return images.draw_marker(images.resize(image, side), at[state["vertex"]], radius=6)

    def heat(values: np.ndarray, cmap: str, floor: float, label: str) -> tuple[np.ndarray, np.ndarray]:
        top = max(float(values.max()), 1e-30)
        log = floor > 0
        low = floor * top if log else 0.0
        return (images.colormap(values, cmap, low, top, log=log),
                images.colorbar(side, cmap, low, top, label, log=log, fg=fg, bg=bg))

    render = images.to_uint8(scene.target if show_target else state["image"])
    loss, loss_bar = heat(state["loss_map"].numpy(), "magma", 0.0, "loss")
    share, share_bar = heat(state["heat"], "inferno", SHARE_DECADES, "|dL_pixel/dv| (log)")
    _, arrow_bar = heat(state["norms"].numpy(), "viridis", REACH, "|dL/dv| (log)")
    arrows = images.draw_arrows(images.resize(images.to_uint8(state["image"]), side), at[m],
                                (state["end"][m] + 0.5) * zoom, gradient_colors(state)[m])
    panels = {
        "render": images.panel(show(render), "target (the car)" if show_target else f"render, loss {state['loss']:.4f}", None, fg, bg),
        "loss": images.panel(show(loss), "per-pixel loss (squared RGBA error)", loss_bar, fg, bg),
        "arrows": images.panel(show(arrows), f"-dL/dv projected ({int(m.sum())} vertices)", arrow_bar, fg, bg),
        "share": images.panel(show(share), f"pixels' share of vertex {state['vertex']}'s gradient", share_bar, fg, bg),
    }
    width, gap = max(p.shape[1] for p in panels.values()), 12
    cells = [np.pad(panels[name], ((0, 0), (0, width - panels[name].shape[1]), (0, 0)), constant_values=bg[0]) for name in PANELS]
    rows = [images.hstack(cells[k : k + 2], gap, bg[0]) for k in (0, 2)]
    title_h = panels["render"].shape[0] - side
    origins = {name: ((k % 2) * (width + gap), (k // 2) * (rows[0].shape[0] + gap) + title_h) for k, name in enumerate(PANELS)}
    return images.vstack(rows, gap, bg[0]), panels, origins, zoom


def panel_hit(origins: dict[str, tuple[int, int]], zoom: float, side: int, x: float, y: float) -> tuple[float, float] | None:
    """Grid pixel (x, y) -> image pixel (col, row) when it lies on a panel's image, else None."""
    for ox, oy in origins.values():
        if 0 <= x - ox < side and 0 <= y - oy < side:
            return (x - ox) / zoom - 0.5, (y - oy) / zoom - 0.5
    return None


def run_headless(args: argparse.Namespace, scene: GradientScene) -> None:
    out = cli.out_dir(args)
    state = scene.analyse(args.sigma, args.gamma, args.vertex)
    side = max(scene.image_size, 4 * min(scene.image_size, 96))
    _, panels, _, _ = compose(state, scene, False, side, fg=images.BLACK, bg=images.WHITE)
    for name, file in zip(PANELS, ("render", "loss_map", "vertex_gradients", "vertex_heatmap")):
        images.save_png(out / f"{file}.png", panels[name])
    save_figure(out / "panels.png", state, scene, args)

    losses, frames = [], []
    for _ in cli.progress(range(args.steps), desc="gradients"):
        losses.append(scene.step(args.sigma, args.gamma))
        with torch.no_grad():
            image = scene.loss_map(scene.vertices, args.sigma, args.gamma)[0]
        frames.append(images.caption(images.hstack([images.to_uint8(scene.target), images.to_uint8(image)]),
                                     f"step {len(losses)}: target | render", size=10))
    with torch.no_grad():
        final = float(scene.loss_map(scene.vertices, args.sigma, args.gamma)[1].mean())
    losses.append(final)
    if frames:
        images.save_gif(out / "steps.gif", frames, fps=8)
    plots.curves(out / "loss.png", {"image loss": losses}, "gradient step (Adam)", "mean squared RGBA error per pixel",
                 f"gradients: image loss (sigma {args.sigma:g}, gamma {args.gamma:g})")
    cli.finish(
        args,
        "gradients",
        {
            "sigma": args.sigma, "gamma": args.gamma, "vertex": state["vertex"],
            "vertices_with_gradient": int(reached(state).sum()), "vertices": int(scene.rest.shape[0]),
            "fd_vs_autodiff_cosine": round(state["fd_cosine"], 6),
            "loss_initial": losses[0], "loss_final": final, "steps": args.steps, "losses": losses,
        },
    )


def save_figure(path, state: dict, scene: GradientScene, args: argparse.Namespace) -> None:
    """The four panels as one matplotlib figure (image axes in pixels, colour bars with their units)."""
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.6), dpi=100)
    axes[0].imshow(images.to_uint8(state["image"]))
    axes[0].imshow(images.to_uint8(scene.target), alpha=0.35)
    axes[0].set_title("render (target overlaid)")
    im = axes[1].imshow(state["loss_map"].numpy(), cmap="magma")
    fig.colorbar(im, ax=axes[1], fraction=0.046, label="squared RGBA error")
    axes[1].set_title("per-pixel loss")
    axes[2].imshow(images.to_uint8(state["image"]))
    m = reached(state)
    d = state["end"] - state["start"]
    from matplotlib.colors import LogNorm

    top = max(float(state["norms"].max()), 1e-30)
    q = axes[2].quiver(state["start"][m, 0], state["start"][m, 1], d[m, 0], -d[m, 1], state["norms"].numpy()[m],
                       cmap="viridis", norm=LogNorm(REACH * top, top), angles="xy", scale_units="xy", scale=1, width=0.006)
    fig.colorbar(q, ax=axes[2], fraction=0.046, label="|dL/dv| (per world unit)")
    axes[2].set_title(f"-dL/dv projected, {int(m.sum())} vertices")
    heat_top = max(float(state["heat"].max()), 1e-30)
    im = axes[3].imshow(np.maximum(state["heat"], SHARE_DECADES * heat_top), cmap="inferno", norm=LogNorm(SHARE_DECADES * heat_top, heat_top))
    axes[3].plot(*state["start"][state["vertex"]], "c+", ms=12, ls="none", label=f"vertex {state['vertex']}")
    axes[3].legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=axes[3], fraction=0.046, label="|dL_pixel/dv|")
    axes[3].set_title(f"pixels' share of vertex {state['vertex']}'s gradient")
    for ax in axes:
        ax.set_xlim(-0.5, scene.image_size - 0.5)
        ax.set_ylim(scene.image_size - 0.5, -0.5)
        ax.set(xlabel="column (pixels)", ylabel="row (pixels)")
    fig.suptitle(f"gradients of the image loss: sigma {args.sigma:g}, gamma {args.gamma:g} "
                 f"(FD/autodiff cosine {state['fd_cosine']:.6f})")
    fig.tight_layout()
    plots.save(fig, path)


def run_gui(args: argparse.Namespace, scene: GradientScene) -> None:
    from demo_kit.tigui import Window

    session = Session(scene, args)
    side = max(scene.image_size, min(3 * scene.image_size, 288))
    grid, _, origins, zoom = compose(session.state(), scene, False, side)
    win = Window("taichi_softras: gradients", grid.shape[:2], args.frames, args.screenshot, zoom=1)
    log_sigma = win.slider("log10 sigma", -7, -1, session.log_sigma, 0.1)
    log_gamma = win.slider("log10 gamma", -6, 0, session.log_gamma, 0.1)
    elevation = win.slider("elevation (deg)", -89, 89, session.elevation, 1)
    azimuth = win.slider("azimuth (deg)", -180, 180, session.azimuth, 1)
    buttons = {win.button("step (g)"): "g", win.button("run / stop (space)"): " ", win.button("reset (r)"): "r",
               win.button("render / target (t)"): "t"}
    while win.running:
        for e in win.events():
            if e.key == win.ti.GUI.LMB:
                hit = panel_hit(origins, zoom, side, *win.cursor_pixel())
                if hit is not None:
                    session.pick_in_image(*hit)
            elif not session.key(buttons.get(e.key, e.key)):
                return
        session.log_sigma, session.log_gamma = log_sigma.value, log_gamma.value
        session.elevation, session.azimuth = elevation.value, azimuth.value
        grid, _, origins, zoom = compose(session.state(), scene, session.show_target, side)
        win.set_canvas(grid)
        win.label(session.status() + "   click: pick")
        win.show()


def run_ggui(args: argparse.Namespace, scene: GradientScene) -> None:
    from demo_kit import ggui

    session = Session(scene, args)
    side = 224
    widgets_box, region = (8, 8, 344, 784), (360, 0, 536, 800)
    grid_at = (region[0] + region[2] + 8, 24)
    grid, _, origins, _ = compose(session.state(), scene, False, side)
    res = (grid_at[0] + grid.shape[1] + 8, 800)
    win = ggui.Window("taichi_softras: gradients", res, args.frames, args.screenshot)
    faces = scene.faces.numpy()
    mesh = ggui.MeshBuffer(faces, scene.rest.shape[0])
    radius = float(np.linalg.norm(scene.rest.numpy(), axis=1).max())
    extent = 1.35 * max(radius, float(np.linalg.norm(scene.target_vertices, axis=1).max()))
    view = ggui.OrbitView(res, region, (0, 0, 0), extent, azimuth=args.azimuth + 70, elevation=20)
    arrows = ggui.LineBuffer(3 * scene.rest.shape[0])
    edges = np.unique(np.sort(scene.target_faces.numpy()[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), 1), axis=0)
    wireframe = ggui.LineBuffer(len(edges))
    target_v = scene.target_vertices.numpy()
    wireframe.update(target_v[edges[:, 0]], target_v[edges[:, 1]], TARGET_COLOR)
    frustum, marks = ggui.LineBuffer(8), ggui.PointBuffer(1)
    show_wireframe = True
    while win.running:
        drag = win.poll(accept=lambda p: not ggui.inside(p, widgets_box))
        if win.pressed is not None and view.contains(win.pressed):
            view.orbit(*drag)
        for key in win.keys:
            if not session.key(key):
                return
        state = session.state()
        vertices = state["vertices"].numpy().astype(np.float64)
        if win.clicked is not None:
            if view.contains(win.clicked):
                picked = view.pick(vertices, win.clicked, ggui.vertex_normals(vertices, faces))
                session.vertex = session.vertex if picked is None else picked
            else:
                hit = panel_hit(origins, side / scene.image_size, side, win.clicked[0] - grid_at[0], win.clicked[1] - grid_at[1])
                if hit is not None:
                    session.pick_in_image(*hit)
            state = session.state()

        grid, _, origins, _ = compose(state, scene, session.show_target, side)
        background = np.full((res[1], res[0], 3), DARK[0], np.uint8)
        background[grid_at[1] : grid_at[1] + grid.shape[0], grid_at[0] : grid_at[0] + grid.shape[1]] = \
            grid[: res[1] - grid_at[1], : res[0] - grid_at[0]]
        top = max(float(state["norms"].max()), 1e-30)
        bar = images.colorbar(260, "viridis", REACH * top, top, "|dL/dv| (log)", log=True, fg=LIGHT, bg=DARK)
        background[res[1] - 280 : res[1] - 20, region[0] + 10 : region[0] + 10 + bar.shape[1]] = bar
        title = images.caption(np.zeros((0, region[2], 3), np.uint8),
                               "3D: mesh coloured by |dL/dv|, white arrows: -dL/dv\nred: target wireframe, yellow: the images' camera (direction)",
                               fg=LIGHT, bg=DARK)
        background[8 : 8 + title.shape[0], region[0] : region[0] + region[2]] = title
        win.background(background)

        mesh.update(vertices, gradient_colors(state))
        m = reached(state)
        g = state["grad"].numpy()[m]
        length = 0.35 * radius / max(float(np.linalg.norm(g, axis=1).max(initial=0)), 1e-30)
        a, b = ggui.arrow_segments(vertices[m], vertices[m] - length * g, view.basis()[3])
        arrows.update(a, b, (1.0, 1.0, 1.0))
        # The images' camera is far outside the view: a small pictogram in its direction stands for it.
        eye = 0.85 * extent * ggui.unit(scene.eye[0].numpy().astype(np.float64))
        fa, fb = ggui.frustum_segments(eye, np.zeros(3), scene.VIEWING_ANGLE, 0.25 * extent)
        frustum.update(fa, fb, CAMERA_COLOR)
        marks.update(vertices[[state["vertex"]]])
        win.begin_scene(view)
        mesh.draw(win.scene)
        arrows.draw(win.scene, width=2)
        if show_wireframe:
            wireframe.draw(win.scene, width=1)
        frustum.draw(win.scene, width=2)
        marks.draw(win.scene, 0.04 * radius, (0.0, 1.0, 1.0))
        win.end_scene()

        with win.widgets("gradients", *widgets_box) as w:
            w.text("soft rasterizer")
            session.log_sigma = w.slider_float("log10 sigma", session.log_sigma, -7, -1)
            session.log_gamma = w.slider_float("log10 gamma", session.log_gamma, -6, 0)
            w.text(f"sigma = {session.sigma:.2e}, gamma = {session.gamma:.2e}")
            w.text("camera of the images (target re-rendered)")
            session.elevation = w.slider_float("elevation (deg)", session.elevation, -89, 89)
            session.azimuth = w.slider_float("azimuth (deg)", session.azimuth, -180, 180)
            w.text("optimization (Adam on the vertices)")
            if w.button("step (g)"):
                session.key("g")
            if w.button("stop (space)" if session.running else "run (space)"):
                session.key(" ")
            if w.button("reset (r)"):
                session.key("r")
            session.show_target = w.checkbox("panel 1 shows the target (t)", session.show_target)
            w.text(f"loss {state['loss']:.5f} after {session.steps} steps")
            w.text(f"picked vertex {state['vertex']}: |dL/dv| {float(state['norms'][state['vertex']]):.2e}")
            w.text(f"FD / autodiff cosine {state['fd_cosine']:.6f}")
            w.text(f"(central differences in {scene.fd_precision})")
            w.text(f"{int(m.sum())} of {len(vertices)} vertices reached")
            view.controls(w)
            show_wireframe = w.checkbox("target wireframe", show_wireframe)
            w.text("click a vertex (3D view or panels)\nto pick it; esc: quit")
        win.show()


def main(args: argparse.Namespace) -> None:
    if args.vertex is not None and args.vertex < 0:
        raise cli.DemoError(f"argument --vertex: expected a vertex index >= 0, got {args.vertex}")
    scene = GradientScene(args)
    if args.vertex is not None and args.vertex >= scene.rest.shape[0]:
        raise cli.DemoError(f"argument --vertex: the mesh has {scene.rest.shape[0]} vertices, got {args.vertex}")
    {"headless": run_headless, "gui": run_gui, "ggui": run_ggui}[cli.front_end(args)](args, scene)


if __name__ == "__main__":
    cli.run(main, build_parser())
