"""Models on top of the crossbar physics: a minimal autograd, layers, optimizers, checkpoints and data.

``models.autograd`` is a define-by-run reverse-mode autograd on raw NumPy/CuPy arrays; ``models.layers``
holds ``Linear``, ``AnalogLinear`` (an :class:`~crossbar.tiles.tile.AnalogTile`), activations, ``Sequential`` and
the losses; ``models.optim`` the optimizers (``SGD``, ``AnalogSGD``) and learning-rate schedules;
``models.checkpoint`` plain-array checkpoints; ``models.data`` reads IDX files (MNIST ships with the package
in ``models/datasets/mnist/``); ``python -m models.mnist`` is the main job. Dependencies point one way:
``models`` may import ``crossbar``, never the reverse. This file imports nothing, so ``import models.data``
works without the physics or a GPU.
"""
