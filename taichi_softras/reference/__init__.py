"""Dense pure-torch statements of every differentiable op (float64-capable). Tests and benchmarks
hold the Taichi kernels to these; they are slow (O(B*H*W*F)) and not meant for real use."""
