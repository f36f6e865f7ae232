"""CUDA sources of crossbar, compiled at run time by CuPy (NVRTC). Only crossbar/_cuda.py reads them."""
