"""arrays.py: the array module minigrok computes with, NumPy on the CPU or CuPy on a GPU.

minigrok.py (the textbook model) and fast.py (the fast engine) both compute with `xp`
(`xp.zeros`, `xp.einsum`, ...), the name the NumPy and CuPy documentation use for "either
module". `xp` is defined here, once, and both files import it; use_device() chooses the
module behind it once, at the start of a run. Arrays go back to NumPy only at the edges
(to_numpy): checkpoints, printing, plotting, analysis.
"""
import sys

import numpy as np

from config import UsageError


class ArrayModule:
    """`xp`: stands for the chosen module, so that `xp.zeros` is `numpy.zeros` or
    `cupy.zeros` in every file that imported xp before the choice was made."""
    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):          # only names not found on the object itself
        if name == "module":                  # not set yet (a copy being made): no module to ask
            raise AttributeError(name)
        return getattr(self.module, name)


xp = ArrayModule(np)


def set_array_module(module):
    """Compute with `module` (numpy or cupy) from now on, in every file."""
    xp.module = module


def use_device(device):
    """Choose the array module once: CuPy on a working GPU, else NumPy.
    'auto' falls back to NumPy with one line on stderr; 'gpu' without a GPU is an error."""
    if device == "cpu":
        set_array_module(np)
        keep_freed_memory()
        return "cpu"
    try:
        import cupy
        ok = cupy.is_available()
        why = "cupy finds no CUDA device"
    except Exception as e:          # not installed, or no CUDA libraries
        ok, why = False, f"cupy cannot be used ({type(e).__name__})"
    if ok:
        set_array_module(cupy)
        return "gpu"
    if device == "gpu":
        raise UsageError(f"--device gpu needs a working CUDA GPU, but {why}; use --device cpu or auto")
    print(f"minigrok: no working GPU ({why}); using NumPy on the CPU", file=sys.stderr)
    set_array_module(np)
    keep_freed_memory()
    return "cpu"


def to_numpy(a):
    """Arrays go back to NumPy only at the edges: checkpoints, printing, plotting."""
    return a if isinstance(a, np.ndarray) else a.get()


def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    NumPy allocates a fresh array for every intermediate, and a training step makes dozens
    of megabyte-sized ones. By default glibc hands large blocks back to the kernel when
    they are freed, so the next step pays a page fault for every 4 KiB it touches again:
    that made an epoch of the default run almost twice as slow. With blocks up to 32 MiB
    served from the heap and the heap never trimmed, the same memory is reused each step.
    Linux/glibc only; elsewhere nothing changes."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    libc.mallopt(M_TRIM_THRESHOLD, 2**30)
