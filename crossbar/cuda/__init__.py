"""The GPU leaf: loads raw_kernels/, registers its launchers into the backend seam
(:func:`crossbar.backend.register`), and replays training steps as CUDA graphs (:mod:`~crossbar.cuda.graph`).
Nothing in crossbar imports it but the package root; CuPy itself is imported only when a kernel is used."""

from . import graph, kernels  # noqa: F401  (importing registers the implementations)
