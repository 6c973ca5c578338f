"""kernel_guard: keep Jupyter kernels alive."""
