"""Bad inputs raise ValueError/TypeError naming the parameter (DESIGN "Conventions: Errors")."""

from __future__ import annotations

import math

import numpy as np
import pytest

import devices
from devices.kernels import get_kernels


def arr(mapping="differential", shape=(2, 3), **kw):
    return devices.DeviceArray(shape, devices.get("epiram"), mapping=mapping, seed=0, **kw)


def var(**flat):
    return devices.Variability().replace(**flat)


ONES = np.ones((2, 3), dtype=int)
NAN = float("nan")

CASES = [
    # --- device models
    ("gmin>=gmax", lambda: devices.ExpDevice(gmin=2e-6, gmax=1e-6), ValueError, r"gmin.*gmax"),
    ("gmin==gmax", lambda: devices.ExpDevice(gmin=1e-6, gmax=1e-6), ValueError, r"gmin.*gmax"),
    ("gmin<0", lambda: devices.ExpDevice(gmin=-1e-9, gmax=1e-6), ValueError, r"gmin"),
    ("gmax str", lambda: devices.ExpDevice(gmin=0.0, gmax="1e-6"), TypeError, r"gmax"),
    ("levels<2", lambda: devices.ExpDevice(gmin=0, gmax=1, levels_ltp=1), ValueError,
     r"levels_ltp.*>= 2"),
    ("levels float", lambda: devices.ExpDevice(gmin=0, gmax=1, levels_ltd=2.5), TypeError,
     r"levels_ltd"),
    ("nl NaN", lambda: devices.ExpDevice(gmin=0, gmax=1, nl_ltp=NAN), ValueError, r"nl_ltp"),
    ("|nl|>9", lambda: devices.ExpDevice(gmin=0, gmax=1, nl_ltd=9.5), ValueError, r"nl_ltd"),
    ("nl<-9", lambda: devices.ExpDevice(gmin=0, gmax=1, nl_ltp=-12.0), ValueError, r"nl_ltp"),
    ("a_from_nl NaN", lambda: devices.a_from_nl(NAN), ValueError, r"nl"),
    ("a_from_nl 10", lambda: devices.a_from_nl(10.0), ValueError, r"nl"),
    ("nl_from_a 0", lambda: devices.nl_from_a(0.0), ValueError, r"\ba\b"),
    ("linear with nl", lambda: devices.LinearDevice(gmin=0, gmax=1, nl_ltp=1.0), ValueError,
     r"nl_ltp"),
    ("variability type", lambda: devices.ExpDevice(gmin=0, gmax=1, variability="none"),
     TypeError, r"variability"),
    ("branch", lambda: devices.get("epiram").conductance(1.0, "up"), ValueError,
     r"branch.*'ltp'"),
    ("conductance NaN", lambda: devices.get("epiram").conductance([1.0, NAN]), ValueError,
     r"\bp\b"),
    ("step b_min>=b_max", lambda: devices.StepDevice(b_min=0.5, b_max=0.5), ValueError,
     r"b_min.*b_max"),
    ("step b_min>b_max", lambda: devices.StepDevice(b_min=0.6, b_max=-0.6), ValueError,
     r"b_min.*b_max"),
    ("soft bounds b_min>0", lambda: devices.StepDevice(model="soft_bounds", b_min=0.1, b_max=1),
     ValueError, r"b_min"),
    ("step model", lambda: devices.StepDevice(model="exp_stepp"), ValueError,
     r"model.*'constant_step'"),
    ("step dw_min 0", lambda: devices.StepDevice(dw_min=0.0), ValueError, r"dw_min"),
    ("step dw_min huge", lambda: devices.StepDevice(dw_min=2.0), ValueError, r"dw_min"),
    ("step up_down", lambda: devices.StepDevice(up_down=1.0), ValueError, r"up_down"),
    ("LUT non-monotone ltp",
     lambda: devices.LUTDevice(ltp=(1e-6, 3e-6, 2e-6, 4e-6), ltd=(4e-6, 1e-6)), ValueError,
     r"ltp.*increasing"),
    ("LUT non-monotone ltd",
     lambda: devices.LUTDevice(ltp=(1e-6, 4e-6), ltd=(4e-6, 2e-6, 3e-6, 1e-6)), ValueError,
     r"ltd.*decreasing"),
    ("LUT too short", lambda: devices.LUTDevice(ltp=(1e-6,), ltd=(4e-6, 1e-6)), ValueError,
     r"ltp"),
    ("LUT outside range",
     lambda: devices.LUTDevice(ltp=(1e-6, 4e-6), ltd=(4e-6, 1e-6), gmin=2e-6, gmax=4e-6),
     ValueError, r"gmin"),
    ("d2d key not accepted (exp)",
     lambda: devices.get("epiram", sigma_step=0.1), ValueError, r"sigma_step.*ExpDevice"),
    ("d2d key not accepted (step)",
     lambda: devices.get("soft_bounds", sigma_nl=0.1), ValueError, r"sigma_nl.*StepDevice"),
    ("d2d key not accepted (lut)",
     lambda: devices.LUTDevice(ltp=(1e-6, 4e-6), ltd=(4e-6, 1e-6), variability=var(sigma_nl=1)),
     ValueError, r"sigma_nl.*LUTDevice"),
    # --- variability parts
    ("c2c<0", lambda: devices.CycleToCycle(sigma=-0.1), ValueError, r"c2c_sigma"),
    ("c2c<0 via get", lambda: devices.get("epiram", c2c_sigma=-1.0), ValueError, r"c2c_sigma"),
    ("read<0", lambda: devices.ReadNoise(sigma=-0.1), ValueError, r"read_sigma"),
    ("sigma_nl<0", lambda: devices.DeviceToDevice(sigma_nl=-1.0), ValueError, r"sigma_nl"),
    ("nl_shared type", lambda: devices.DeviceToDevice(nl_shared=1), TypeError, r"nl_shared"),
    ("stuck>1", lambda: devices.Stuck(p_gmin=1.5), ValueError, r"p_stuck_gmin"),
    ("stuck sum>1", lambda: devices.Stuck(p_gmin=0.6, p_gmax=0.6), ValueError, r"stuck"),
    ("stuck via get", lambda: devices.get("epiram", p_stuck_random=2.0), ValueError,
     r"p_stuck_random"),
    ("drift t0=0", lambda: devices.Drift(t0=0.0), ValueError, r"drift_t0"),
    ("drift t0<0", lambda: devices.get("epiram", drift_t0=-1.0), ValueError, r"drift_t0"),
    ("drift nu<0", lambda: devices.Drift(nu=-0.1), ValueError, r"drift_nu"),
    ("endurance n50<1", lambda: devices.Endurance(n50=0.5), ValueError, r"endurance_n50"),
    ("reset_sigma<0", lambda: devices.Variability(reset_sigma=-1.0), ValueError, r"reset_sigma"),
    ("part type", lambda: devices.Variability(d2d=devices.CycleToCycle()), TypeError, r"d2d"),
    ("unknown variability key", lambda: devices.Variability().replace(sigma_nll=1.0), ValueError,
     r"sigma_nll.*did you mean 'sigma_nl'"),
    ("gmin spread redraw failure",
     lambda: devices.DeviceArray(
         (10, 10),
         devices.ExpDevice(gmin=0.99e-6, gmax=1e-6, variability=var(sigma_gmin=100.0)),
         seed=0,
     ),
     ValueError, r"sigma_gmin"),
    # --- registry
    ("unknown preset", lambda: devices.get("ag_a_sii"), ValueError, r"did you mean 'ag_a_si'"),
    ("unknown override", lambda: devices.get("epiram", sigma_nll=1.0), ValueError,
     r"sigma_nll.*did you mean.*'sigma_nl'"),
    ("unknown backend kernels", lambda: get_kernels("cuda"), ValueError, r"backend"),
    # --- quantizer
    ("bits<0", lambda: devices.UniformQuantizer(bits=-1, lo=0, hi=1), ValueError, r"bits"),
    ("bits=0", lambda: devices.UniformQuantizer(bits=0, lo=0, hi=1), ValueError, r"bits"),
    ("bits>16", lambda: devices.UniformQuantizer(bits=17, lo=0, hi=1), ValueError, r"bits"),
    ("bits float", lambda: devices.UniformQuantizer(bits=2.5, lo=0, hi=1), TypeError, r"bits"),
    ("lo>=hi", lambda: devices.UniformQuantizer(bits=2, lo=1.0, hi=1.0), ValueError,
     r"lo.*hi"),
    ("lo>hi", lambda: devices.UniformQuantizer(bits=2, lo=2.0, hi=-2.0), ValueError, r"lo.*hi"),
    ("stochastic without rng",
     lambda: devices.UniformQuantizer(bits=2, lo=0, hi=1, stochastic=True)(np.ones(2)),
     ValueError, r"rng"),
    ("quantize NaN", lambda: devices.UniformQuantizer(bits=2, lo=0, hi=1)(np.array([NAN])),
     ValueError, r"NaN"),
    # --- array construction
    ("unknown mapping", lambda: arr(mapping="diferential"), ValueError,
     r"mapping.*did you mean 'differential'"),
    ("unknown backend", lambda: arr(backend="cuda"), ValueError, r"backend"),
    ("shape not pair", lambda: devices.DeviceArray(5, devices.get("epiram")), ValueError,
     r"shape"),
    ("shape zero", lambda: arr(shape=(0, 3)), ValueError, r"shape\[0\]"),
    ("device not a model", lambda: devices.DeviceArray((2, 2), "epiram"), TypeError, r"device"),
    ("w_max<=0", lambda: arr(w_max=0.0), ValueError, r"w_max"),
    ("seed<0", lambda: devices.DeviceArray((2, 2), devices.get("epiram"), seed=-1), ValueError,
     r"seed"),
    ("dac type", lambda: arr(dac=lambda x: x), TypeError, r"dac"),
    ("array variability type", lambda: arr(variability={"c2c_sigma": 0}), TypeError,
     r"variability"),
    # --- pulses
    ("NaN pulses", lambda: arr().pulse(np.full((2, 3), NAN)), ValueError, r"n_plus.*NaN"),
    ("non-integer pulses", lambda: arr().pulse(np.full((2, 3), 0.5)), ValueError,
     r"n_plus.*whole"),
    ("bool pulses", lambda: arr().pulse(np.ones((2, 3), dtype=bool)), TypeError, r"n_plus"),
    ("huge pulses", lambda: arr().pulse(ONES * 2**40), ValueError, r"n_plus"),
    ("pulse shape", lambda: arr().pulse(np.ones((3, 2), dtype=int)), ValueError,
     r"n_plus.*shape"),
    ("n_minus shape", lambda: arr().pulse(ONES, np.ones((2, 2), dtype=int)), ValueError,
     r"n_minus.*shape"),
    ("n_minus on reference", lambda: arr("reference").pulse(ONES, ONES), ValueError,
     r"n_minus.*reference"),
    # --- reads
    ("matmul shape", lambda: arr().matmul(np.ones(5)), ValueError, r"\bx\b.*shape"),
    ("matmul 3-D", lambda: arr().matmul(np.ones((2, 2, 3))), ValueError, r"\bx\b.*shape"),
    ("matmul NaN", lambda: arr().matmul(np.array([1.0, NAN, 0.0])), ValueError, r"\bx\b.*NaN"),
    ("rmatmul shape", lambda: arr().rmatmul(np.ones(3)), ValueError, r"\bd\b.*shape"),
    # --- programming
    ("program shape", lambda: arr().program(np.zeros((3, 3))), ValueError, r"\bW\b.*shape"),
    ("program NaN", lambda: arr().program(np.full((2, 3), NAN)), ValueError, r"\bW\b"),
    ("unknown mode", lambda: arr().program(np.zeros((2, 3)), mode="verfy"), ValueError,
     r"mode.*did you mean 'verify'"),
    ("unknown form", lambda: arr().program(np.zeros((2, 3)), form="centred"), ValueError,
     r"form.*did you mean 'centered'"),
    ("negative tol", lambda: arr().program(np.zeros((2, 3)), mode="verify", tol=-1.0),
     ValueError, r"tol"),
    ("mask dtype", lambda: arr().program(np.zeros((2, 3)), mask=np.ones((2, 3), dtype=int)),
     ValueError, r"mask.*bool"),
    ("mask shape", lambda: arr().program(np.zeros((2, 3)), mask=np.ones((3, 2), dtype=bool)),
     ValueError, r"mask.*shape"),
    ("refresh mask dtype", lambda: arr().refresh(np.ones((2, 3), dtype=np.int8)), ValueError,
     r"mask.*bool"),
    ("refresh on reference", lambda: arr("reference").refresh(np.ones((2, 3), dtype=bool)),
     ValueError, r"differential"),
    ("needs_refresh threshold", lambda: arr().needs_refresh(1.5), ValueError, r"threshold"),
    ("needs_refresh on reference", lambda: arr("reference").needs_refresh(), ValueError,
     r"differential"),
    ("saturated which", lambda: arr().saturated("mid"), ValueError, r"which"),
    ("age<0", lambda: arr().age(-1.0), ValueError, r"seconds"),
    # --- pulse_update
    ("negative lr", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=-0.1), ValueError,
     r"\blr\b"),
    ("zero lr", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=0.0), ValueError,
     r"\blr\b"),
    ("bl 0", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=0.1, bl=0), ValueError,
     r"\bbl\b"),
    ("bl>256", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=0.1, bl=300), ValueError,
     r"\bbl\b"),
    ("batch mismatch",
     lambda: arr().pulse_update(np.ones((3, 3)), np.ones((2, 2)), lr=0.1), ValueError,
     r"\bx\b.*\bd\b.*batch"),
    ("update x shape", lambda: arr().pulse_update(np.ones(4), np.ones(2), lr=0.1), ValueError,
     r"\bx\b.*shape"),
    ("unknown method", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=0.1, method="uni"),
     ValueError, r"method.*'unidirectional'"),
    ("unknown side", lambda: arr().pulse_update(np.ones(3), np.ones(2), lr=0.1, side="minus"),
     ValueError, r"side"),
    ("unidirectional on reference",
     lambda: arr("reference").pulse_update(np.ones(3), np.ones(2), lr=0.1,
                                           method="unidirectional"),
     ValueError, r"unidirectional.*differential"),
    ("nominal_step unidirectional on reference",
     lambda: arr("reference").nominal_step("unidirectional"), ValueError, r"differential"),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "exc", "pattern"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_raises_naming_the_parameter(factory, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        factory()
    assert type(info.value) is exc  # not a subclass such as a numba error


def test_table_is_large():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


def test_errors_report_the_offending_value():
    with pytest.raises(ValueError, match=r"9\.5") as e:
        devices.ExpDevice(gmin=0, gmax=1, nl_ltp=9.5)
    assert "9.0" in str(e.value)  # and the valid range
    with pytest.raises(ValueError, match=r"'ag_a_sii'"):
        devices.get("ag_a_sii")
    with pytest.raises(ValueError, match=r"-0\.1"):
        devices.CycleToCycle(sigma=-0.1)


def test_no_silent_nan_from_reads():
    a = arr()
    a.program(np.zeros((2, 3)))
    for noise in (False, True):
        assert np.all(np.isfinite(a.weights(noise=noise)))
    assert not math.isnan(float(a.saturation()["high"]))


@pytest.mark.parametrize("read", ["matmul", "rmatmul"])
def test_read_inputs_whose_sum_overflows_are_finite_not_refused(read):
    """The reads check their input with one sum first; a sum that overflows (every value
    finite) must fall through to the element-wise check, not raise; NaN and inf raise."""
    a = arr()
    n = a.in_features if read == "matmul" else a.out_features
    big = np.full((2, n), 1e308)  # the sum overflows to inf; every value is finite
    with np.errstate(over="ignore", invalid="ignore"):
        getattr(a, read)(big)
    for bad in (NAN, math.inf, -math.inf):
        v = np.zeros((2, n))
        v[1, -1] = bad
        with pytest.raises(ValueError, match="contains NaN or infinite values"):
            getattr(a, read)(v)
