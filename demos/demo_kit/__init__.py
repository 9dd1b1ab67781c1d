"""What the demos share, one module per job.

* :mod:`.cli` — the command line: parser, argument types, one-line errors, ``--debug``, the result line.
* :mod:`.progress` — the tqdm bar every long job shows.
* :mod:`.images` — uint8 images: conversion, layout, captions, colour maps, colour bars, arrows, PNG/GIF.
* :mod:`.plots` — matplotlib figures: curves, discrete per-item values, labelled image grids.
* :mod:`.rendering` — meshes in, images out: OBJ loading, look-at cameras, one SoftRenderer call.
* :mod:`.tigui` — the ``ti.GUI`` window (``--ui gui``).
* :mod:`.ggui` — the ``ti.ui`` (GGUI) window: ImGui widgets, image panels and an orbitable 3D view.
* :mod:`.loop` — the optimization loop of the fitting demos, for the window and headless runs.
* :mod:`.gradient_scene` — the gradients demo's model: scene, gradients, heat-map, the windows' shared state.

Demos run as scripts (``python demos/x.py``), which puts this folder's parent on ``sys.path``.
"""
