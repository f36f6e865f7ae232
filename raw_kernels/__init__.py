"""CUDA sources of crossbar, compiled at run time by CuPy (NVRTC). Only crossbar/cuda/kernels.py reads them."""
