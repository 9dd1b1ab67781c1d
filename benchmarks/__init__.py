"""Benchmarks (timings live here, never in tests). Run: python -m benchmarks.bench_raster"""
