"""Shared by every test file: each test starts and ends computing with NumPy."""
import numpy as np
import pytest

import arrays


@pytest.fixture(autouse=True)
def numpy_backend():
    arrays.set_array_module(np)
    yield
    arrays.set_array_module(np)
