"""Compile every CUDA kernel of ``devices/kernels/cuda.py`` to PTX for a real GPU target.

The simulator runs the kernels as Python and so cannot catch what only the CUDA compiler sees
(typing and lowering on the CUDA target). This script compiles each kernel with the argument
types :class:`devices.DeviceArray` passes, using libNVVM only: no GPU and no driver needed.
It needs libNVVM and libdevice, e.g. from the ``nvidia-cuda-nvcc-cu12`` wheel::

    pip install --target /tmp/nvcc nvidia-cuda-nvcc-cu12
    CUDA_HOME=/tmp/nvcc/nvidia/cuda_nvcc python tests/devices/cuda_ptx_check.py

Prints one line per kernel and exits non-zero on the first failure. Run by
``test_cuda_kernels.py::test_cuda_kernels_compile_to_ptx`` when ``CUDA_HOME`` holds libNVVM.
"""

from __future__ import annotations

import sys
import types as _pytypes

from numba import cuda
from numba import types as t


def main(cc=(9, 0)) -> int:
    # Without a GPU, numba (0.68) asks the current device for its compute capability when it
    # compiles a device function called from a kernel; answer with the target's instead.
    import numba.cuda.dispatcher as disp

    disp.get_current_device = lambda: _pytypes.SimpleNamespace(compute_capability=cc)
    from devices.kernels import cuda as K

    f8, i8, u8, b1, u1 = t.float64, t.int64, t.uint64, t.boolean, t.uint8

    def A(dt, nd=1):
        return t.Array(dt, nd, "C")

    # the records' fields, in record order: DeviceState then DeviceParams
    state = (A(f8), A(f8), A(f8), A(u1), A(f8), A(i8), A(i8), A(i8), A(i8))
    params = (i8, A(f8, 2), A(f8), A(f8), A(f8), f8, A(f8))
    rec = (*state, *params)
    sigs = {
        "_k_write": (*rec, A(i8), u8, b1),
        "_k_write_sparse": (*rec, A(i8), A(i8), u8, b1),
        "_k_read": (A(f8), f8, u8, A(f8)),
        # bases, xbits, dbits, xneg, dneg, n_in, N, route, W, alpha, gref, tot
        "_k_update": (
            *rec,
            A(u8),
            A(u8, 3),
            A(u8, 3),
            A(b1, 2),
            A(b1, 2),
            i8,
            i8,
            i8,
            A(f8),
            f8,
            f8,
            A(i8),
        ),
        # dW, step_up, step_dn, theta, n_max, stochastic, route, base, base_r, thr, half_step,
        # dg_nom, need, W, alpha, gref, tot
        "_k_request": (
            *rec,
            A(f8),
            f8,
            f8,
            f8,
            i8,
            b1,
            i8,
            u8,
            u8,
            f8,
            f8,
            f8,
            A(b1),
            A(f8),
            f8,
            f8,
            A(i8),
        ),
        # idx, target, x_t, tol_g, cap, read_sigma, key, c0, pn, tot
        "_k_verify": (*rec, A(i8), A(f8), A(f8), f8, i8, f8, u8, i8, A(f8), A(i8)),
        "_k_trains": (A(f8, 2), A(i8), u8, i8, A(u8, 3)),
    }
    for name, sig in sigs.items():
        ptx, _ = cuda.compile_ptx(getattr(K, name).py_func, sig, cc=cc)
        assert ".entry" in ptx, name
        print(f"{name}: {len(ptx)} characters of PTX for sm_{cc[0]}{cc[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
