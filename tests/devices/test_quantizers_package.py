"""devices.quantizers as a package: every public name keeps its import path, the DAC/ADC converter
and the QAT family live in their own modules, backends are checked by devices.backends."""

import importlib

import numpy as np
import pytest

import devices
import devices.quantizers as q

PUBLIC = {
    "converter": ["UniformQuantizer"],
    "base": ["Quantizer", "ROUNDING_MODES", "BACKENDS", "QUANTIZER_BACKENDS", "AUTO_NUMBA_MIN_SIZE",
             "LSQ_MIN_STEP", "STAT_MIN_SCALE"],
    "uniform": ["Uniform"],
    "lsq": ["LSQ", "lsq_bounds", "lsq_fake_quant", "lsq_gradients"],
    "statsq": ["StatsQ", "statsq_scale"],
    "level_grid": ["LevelGrid", "LEVEL_SCALINGS", "DEVICE_MAPPINGS"],
}  # fmt: skip


def test_every_name_is_one_object_under_every_path():
    names = [n for ns in PUBLIC.values() for n in ns]
    assert sorted(q.__all__) == sorted(names)
    for mod, ns in PUBLIC.items():
        sub = importlib.import_module(f"devices.quantizers.{mod}")
        for n in ns:
            assert getattr(q, n) is getattr(sub, n), n
            if n in devices.__all__:
                assert getattr(devices, n) is getattr(q, n), n


def test_family_members_share_the_interface():
    for cls in (q.Uniform, q.LSQ, q.StatsQ, q.LevelGrid):
        assert issubclass(cls, q.Quantizer)
    assert not issubclass(q.UniformQuantizer, q.Quantizer)  # the converter stands apart


def test_backend_is_checked_by_the_registry():
    assert q.BACKENDS == devices.backends.CPU_BACKENDS
    with pytest.raises(ValueError, match="did you mean 'numba'"):
        q.Uniform(4, backend="numbaa")
    with pytest.raises(ValueError, match="backend must be one of"):
        q.LevelGrid([-1.0, 0.0, 1.0], backend="cupy")
    x = np.random.default_rng(0).normal(size=(3, 50))
    for cls in (q.Uniform, q.LSQ, q.StatsQ):
        a, b = cls(3, axis=0, backend="numpy"), cls(3, axis=0, backend="numba")
        np.testing.assert_array_equal(a.fake(x), b.fake(x))


def test_converter_checks_its_flag():
    with pytest.raises(TypeError, match="stochastic must be True or False"):
        q.UniformQuantizer(bits=2, lo=0.0, hi=1.0, stochastic=1)
    with pytest.raises(TypeError, match="narrow must be True or False"):
        q.Uniform(2, narrow="no")
