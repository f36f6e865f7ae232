"""Shared test settings: hypothesis profiles, the ``gpu`` marker, small helpers."""

import os

import numpy as np
import pytest
from hypothesis import settings

# deadline None: first calls compile kernels or warm caches; derandomize keeps CI reproducible
settings.register_profile("default", deadline=None, derandomize=True, max_examples=30)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items):
    from crossbar.backend import cupy_available
    if cupy_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rs():
    """A seeded NumPy generator for test inputs (never used inside the package)."""
    return np.random.default_rng(1234)
