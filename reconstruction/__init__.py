"""Single-view 3D reconstruction on the NMR/SoftRas ShapeNet format (SoftRas mesh model and the
NeurIPS'19 implicit model), with an offline synthetic data generator.

Importing this package initializes nothing (no Taichi, no fields).
"""
