"""The sweeps of ``examples/e3_e5_study.py``: the E3 grid they plan, and its table."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def e3(load_example):
    return load_example("e3_e5_study")


def test_e3_sweeps_cover_the_full_grid_once(e3):
    """The E3 sweeps together plan every (device, rule, sigma_nl, spread) point of the spec's
    4 x 3 grid on ag_a_si and epiram with 5 device instances, and no point twice."""
    from synapse_sim.sweep import expand, parse_spec

    seen = {}
    for name in ("e3", "e3_nl_more", "e3_spread", "e3_epiram", "e3_product"):
        for t in expand(parse_spec(e3.spec_of(name))):
            key = (
                t.run["device"],
                t.run["rule"],
                float(t.params.get("sigma_nl", 0.0)),
                float(t.params.get(e3.SPREAD, 0.0)),
            )
            seen.setdefault(key, set()).add(t.instance)
    want = {
        (d, r, s, g)
        for d in ("ag_a_si", "epiram")
        for r in e3.RULES
        for s in (0.0, 0.5, 1.0, 2.0)
        for g in (0.0, 0.1, 0.2)
    }
    assert set(seen) == want
    assert all(len(v) == 5 for v in seen.values())
