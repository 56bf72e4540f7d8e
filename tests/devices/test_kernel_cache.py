"""numba's cache of a kernel module is dropped when a module it compiles in changes."""

from __future__ import annotations

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
    for kern in (nb._update_par, nb._update_ser):
        assert kern.overloads, kern.__name__
        for cres in kern.overloads.values():
            assert not cres.library.has_dynamic_globals, kern.__name__
