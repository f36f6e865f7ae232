"""Models on top of the crossbar physics: a minimal autograd, layers, optimizers and data.

``models.autograd`` is a define-by-run reverse-mode autograd on raw NumPy/CuPy arrays, and
``models.data`` reads IDX files (MNIST ships with the package in ``models/datasets/mnist/``).
Dependencies point one way: ``models`` may import ``crossbar``, never the reverse. This file
imports nothing, so ``import models.data`` works without the physics or a GPU.
"""
