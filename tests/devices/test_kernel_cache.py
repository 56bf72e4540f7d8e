"""numba's cache of a kernel module is dropped when a module it compiles in changes."""

from __future__ import annotations

import os

from devices.kernels.cache import drop_stale_cache


def _setup(tmp_path):
    mod = tmp_path / "kern.py"
    dep = tmp_path / "dep.py"
    mod.write_text("# kernels\n")
    dep.write_text("X = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    return mod, dep, cache


def _cache_files(cache):
    files = [cache / "kern.f-10.py311.nbi", cache / "kern.f-10.py311.1.nbc"]
    for f in files:
        f.write_bytes(b"compiled")
    other = cache / "other.g-3.py311.nbi"  # another module's cache is never touched
    other.write_bytes(b"compiled")
    return files, other


def test_cache_dropped_only_when_a_dependency_changes(tmp_path):
    mod, dep, cache = _setup(tmp_path)
    files, other = _cache_files(cache)
    # first import with no stamp: the cache's origin is unknown, so it is dropped once
    assert drop_stale_cache(str(mod), str(dep)) is True
    assert not any(f.exists() for f in files) and other.exists()
    files, other = _cache_files(cache)
    # same dependency source: the cache is kept
    assert drop_stale_cache(str(mod), str(dep)) is False
    assert all(f.exists() for f in files)
    # the dependency changes: the compiled code inlining it is stale and goes
    dep.write_text("X = 2\n")
    assert drop_stale_cache(str(mod), str(dep)) is True
    assert not any(f.exists() for f in files) and other.exists()
    assert drop_stale_cache(str(mod), str(dep)) is False


def test_missing_dependency_or_read_only_folder_changes_nothing(tmp_path):
    mod, dep, cache = _setup(tmp_path)
    files, _ = _cache_files(cache)
    assert drop_stale_cache(str(mod), str(tmp_path / "absent.py")) is False
    assert all(f.exists() for f in files)


def test_kernel_modules_are_guarded():
    import devices.kernels.numba_cpu as nb
    import devices.kernels.online as online

    for m in (nb, online):
        src = open(m.__file__).read()
        assert "drop_stale_cache(__file__" in src


def test_update_twins_can_be_cached(monkeypatch):
    """Both twins of the pulse-train update, on a sparse batch and a dense one, compile to code
    numba can keep in its on-disk cache: no dynamic globals (a ctypes pointer such as numba's
    ``get_num_threads`` read inside a kernel makes numba warn "Cannot cache" and compile the
    kernel again in every process, tens of seconds for these)."""
    import numpy as np

    import devices
    import devices.kernels.numba_cpu as nb

    r = np.random.default_rng(0)
    for par in (0, 1 << 62):
        monkeypatch.setattr(nb, "_PARALLEL_MIN_UPDATE", par)
        monkeypatch.setattr(nb, "_ADAPT_MIN_UPDATE", 1 << 62)
        a = devices.DeviceArray((64, 300), devices.get("constant_step"), seed=1)
        a.pulse_update(r.uniform(-1, 1, (4, 300)), r.uniform(-1, 1, (4, 64)), 0.01)  # dense
        x = np.zeros((4, 300))
        x[:, :5] = 1.0
        a.pulse_update(x, r.uniform(-1, 1, (4, 64)), 0.01)  # sparse: few active inputs
    for kern in (nb._rows_par, nb._rows_ser, nb._lanes_par, nb._lanes_ser, nb._update_tiles,
                 nb._tile_lanes):  # fmt: skip
        assert kern.overloads, kern.__name__
        for cres in kern.overloads.values():
            assert not cres.library.has_dynamic_globals, kern.__name__


def _parfors(fn):
    """The parallel loops numba made of a function it has just compiled (not from the cache)."""
    (cres,) = fn.overloads.values()
    return len(cres.metadata["parfor_diagnostics"].initial_parfors)


def test_serial_pipeline_options_survive_every_compile():
    """numba reads a dict of parallel options by popping its keys: a dict shared by several
    kernels set the options of the first one compiled and left numba's defaults (every
    transformation on) for the others, so np.zeros became a parallel region in a function the
    parallel update calls inside its prange (a nested region a row, the dense update 4-5x
    slower). The kernels' options are a ParallelOptions, which numba copies."""
    import numpy as np
    from numba import njit
    from numba.core.cpu import ParallelOptions

    import devices.kernels.numba_cpu as nb
    import devices.kernels.online as online

    opts = nb._SERIAL_PIPELINE
    assert isinstance(opts, ParallelOptions) and online.SERIAL_PIPELINE is opts

    def zeros_sum(n):
        return np.zeros(n).sum()

    first, second = njit(parallel=opts)(zeros_sum), njit(parallel=opts)(zeros_sum)
    assert first(5) == second(5) == 0.0
    assert _parfors(first) == _parfors(second) == 0  # the second one too
    # the options the kernels hold are still the serial pipeline's after all that compiling
    held = [
        d.targetoptions["parallel"]
        for m in (nb, online)
        for d in vars(m).values()
        if not isinstance(getattr(d, "targetoptions", {}).get("parallel", False), bool)
    ]
    assert len(held) >= 15
    for o in held:
        assert o is opts
        assert o.prange and not (o.numpy or o.comprehension or o.reduction or o.setitem
                                 or o.stencil or o.fusion or o.inplace_binop)  # fmt: skip
    # a dict, as numba documents it, is what went wrong: its second function gets parallel loops
    names = "comprehension prange numpy reduction setitem stencil fusion inplace_binop".split()
    shared = {k: getattr(opts, k) for k in names}
    a, b = njit(parallel=shared)(zeros_sum), njit(parallel=shared)(zeros_sum)
    a(5), b(5)
    assert (_parfors(a), _parfors(b)) == (0, 2)


def test_serial_twin_helpers_make_no_parallel_region():
    """The serial twins are compiled with parallel=True (numba's parallel pipeline gives their
    loops faster code, numba_cpu._SERIAL_NOTE), so an array call in a helper they inline
    becomes a parallel region, launched on every call of the serial twin (which exists to keep
    off numba's threads): _sparse_rows clears its scratch with a loop, not np.zeros."""
    import numpy as np
    from numba import njit

    import devices.kernels.numba_cpu as nb

    @njit(parallel=True)
    def rows(nzx, ms, n_in, n_out):
        return nb._sparse_rows(1, nzx, ms, n_in, n_out, 1 << 18, 1)

    nzx = np.array([[0, 3, 0, 0], [3, 1, 2, 0]], dtype=np.int64)
    ms = np.array([2, 3], dtype=np.int64)
    # union of the active inputs {0, 1, 2, 3}: 2**18 // (272 * 4) = 240 rows, at most n_out
    assert rows(nzx, ms, 4, 1000) == 240
    assert _parfors(rows) == 0


def test_parallel_kernels_launch_no_nested_region(tmp_path):
    """The parallel twins' loop bodies (the rows' tiles, the lanes, the request chunks) must not
    start parallel regions of their own: numba's workqueue threading layer, which refuses a
    nested launch, aborts the process at the first one (what found the serial pipeline's
    options bug: _tile_lanes' scratch arrays were parallel regions). Every update and request
    below runs the parallel twin, in a child process on the workqueue layer."""
    import subprocess
    import sys
    from pathlib import Path

    child = """
import numba, numpy as np, devices
import devices.kernels.numba_cpu as nb
nb._PARALLEL_MIN_UPDATE = 0
nb._PARALLEL_MIN = 0
r = np.random.default_rng(0)
for preset in ("constant_step", "soft_bounds", "ag_a_si"):
    a = devices.DeviceArray((48, 300), devices.get(preset), seed=1)
    a.pulse_update(r.uniform(-1, 1, (4, 300)), r.uniform(-1, 1, (4, 48)), 0.01)  # dense
    x = np.zeros((4, 300))
    x[:, :5] = 1.0
    a.pulse_update(x, r.uniform(-1, 1, (4, 48)), 0.01)  # sparse
    a.pulse_request(r.normal(0, 0.05, (48, 300)), refresh_threshold=0.5)
print("layer", numba.threading_layer())
"""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", child], cwd=root, env=env, capture_output=True,
                         text=True, timeout=900, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "layer workqueue" in out.stdout
