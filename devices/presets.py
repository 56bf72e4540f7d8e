"""The preset registry: published devices (``device_presets.json``), an ideal device, and
aihwkit-style step models. Each preset is a frozen model carrying its citation.

>>> import devices
>>> "ag_a_si" in devices.names()
True
>>> devices.get("epiram", c2c_sigma=0).variability.c2c_sigma
0.0
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources

from .models import DeviceModel, ExpDevice, LinearDevice, StepDevice
from .validation import check_choice
from .variability import FLAT_KEYS, CycleToCycle, DeviceToDevice, Variability

__all__ = [
    "names",
    "get",
    "apply_overrides",
    "info",
    "published",
    "short_citation",
    "siemens",
    "TABLE_HEADER",
    "table_rows",
]

PUBLISHED = (
    "ag_a_si",
    "taox_hfox",
    "taox_tio2",
    "pcmo",
    "alox_hfo2",
    "gst_pcm",
    "epiram",
    "hzo_fefet",
)
_AIHWKIT = (
    "R1: M. J. Rasch et al., 'A flexible and fast PyTorch toolkit for simulating "
    "training and inference on analog crossbar arrays', IEEE AICAS 2021 "
    "(IBM aihwkit device defaults)"
)


@functools.lru_cache(maxsize=1)
def published() -> dict:
    """The parsed ``device_presets.json`` (published parameters, citations, accuracies)."""
    text = resources.files("devices").joinpath("data/device_presets.json").read_text()
    return json.loads(text)


def _from_json(key: str) -> DeviceModel:
    rec = published()["presets"][key]
    var = (
        Variability(c2c=CycleToCycle(sigma=rec["c2c_sigma"])) if rec["c2c_sigma"] else Variability()
    )
    common = dict(
        gmin=rec["gmin_S"],
        gmax=rec["gmax_S"],
        levels_ltp=int(rec["levels_ltp"]),
        levels_ltd=int(rec["levels_ltd"]),
        variability=var,
        name=key,
        citation=rec["reference"],
    )
    if rec["family"] == "linear":
        return LinearDevice(**common)
    return ExpDevice(nl_ltp=rec["nl_ltp"], nl_ltd=rec["nl_ltd"], **common)


def _step(key: str, model: str, **kw) -> StepDevice:
    var = Variability(
        d2d=DeviceToDevice(sigma_step=0.3, sigma_asym=0.01, sigma_bounds=0.3),
        c2c=CycleToCycle(sigma=0.3),
    )
    return StepDevice(
        model=model,
        dw_min=0.001,
        b_min=-0.6,
        b_max=0.6,
        variability=var,
        name=key,
        citation=_AIHWKIT,
        **kw,
    )


_FACTORIES = {
    **{k: functools.partial(_from_json, k) for k in (*PUBLISHED, "ideal")},
    "constant_step": functools.partial(_step, "constant_step", "constant_step"),
    "soft_bounds": functools.partial(_step, "soft_bounds", "soft_bounds"),
    "linear_step": functools.partial(_step, "linear_step", "linear_step"),
}


def names() -> list[str]:
    """Names of all presets, published devices first."""
    return list(_FACTORIES)


@functools.cache
def _base(name: str) -> DeviceModel:
    return _FACTORIES[name]()


def get(name: str, **overrides) -> DeviceModel:
    """A preset by name, with overrides applied and validated.

    Parameters
    ----------
    name : str
        One of :func:`names`; an unknown name raises ``ValueError`` suggesting close matches.
    **overrides
        Model fields (``levels_ltp=64``, ``nl_ltd=-2``, ``gmin=...``) and flat variability keys
        (``c2c_sigma=0``, ``sigma_nl=1.0``, ``read_sigma=0.02``, ``p_stuck_gmin=0.01``, ...; see
        :data:`devices.variability.FLAT_KEYS`), or a whole ``variability=Variability(...)``.

    Returns
    -------
    DeviceModel
    """
    check_choice("device preset", name, names())
    return apply_overrides(_base(name), overrides, f"override for preset {name!r}")


def apply_overrides(model: DeviceModel, overrides: dict, what: str = "device override"):
    """``model`` with model fields and flat variability keys (:data:`FLAT_KEYS`) replaced.

    Parameters
    ----------
    model : DeviceModel
    overrides : dict
        Model fields (``p_ltp``, ``nl_ltp`` ...) and variability keys (``c2c_sigma`` ...).
    what : str
        How an unknown key is named in the error.

    Raises
    ------
    ValueError
        An unknown key (with the keys allowed and a close match) or a bad value.
    """
    if not overrides:
        return model
    fields = {f.name for f in dataclasses.fields(model) if f.init}
    model_kw = {k: v for k, v in overrides.items() if k in fields}
    var_kw = {k: v for k, v in overrides.items() if k not in fields}
    unknown = [k for k in var_kw if k not in FLAT_KEYS and k != "reset_sigma"]
    if unknown:
        allowed = sorted((fields - {"name", "citation"}) | set(FLAT_KEYS) | {"reset_sigma"})
        check_choice(what, unknown[0], allowed)
    if var_kw:
        base_var = model_kw.pop("variability", model.variability)
        model_kw["variability"] = base_var.replace(**var_kw)
    return dataclasses.replace(model, **model_kw)


def info(name: str) -> dict:
    """Everything known about a preset: the model's description plus the published record."""
    model = get(name)
    d = model.describe()
    rec = published()["presets"].get(name)
    if rec is not None:
        d["published"] = rec
    return d


# ----------------------------------------------------------------------------- the preset table
#: Columns of :func:`table_rows` (``synapse-sim devices`` and the zoo's ``devices.md``).
TABLE_HEADER = (
    "name",
    "family",
    "levels LTP/LTD",
    "NL LTP/LTD",
    "Gmin",
    "Gmax",
    "c2c sigma",
    "citation",
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_CITATION = re.compile(r"^(?:[A-Z]\d+:\s*)?(?P<authors>[^']+?),\s*'[^']+',?\s*(?P<rest>.*)$")


def siemens(g: float) -> str:
    """A conductance with its unit: ``3.84615e-08`` -> ``'38.5 nS'``."""
    for scale, unit in ((1e-3, "mS"), (1e-6, "uS"), (1e-9, "nS"), (1e-12, "pS")):
        if abs(g) >= scale:
            return f"{g / scale:.3g} {unit}"
    return f"{g:.3g} S"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)].rstrip() + "..."


def short_citation(text: str, width: int = 40) -> str:
    """Short form of a citation: first author, venue (its abbreviation if given) and year.

    ``"S. H. Jo, T. Chang, ..., 'Title', Nano Letters 10(4):1297-1301, 2010"`` gives
    ``"Jo et al., Nano Letters 2010"``; text without an author list and quoted title is cut
    at its first sentence and to ``width`` characters.

    Parameters
    ----------
    text : str
        A preset's ``citation``.
    width : int
        Longest result.

    Returns
    -------
    str
    """
    text = " ".join(text.split())
    m = _CITATION.match(text)
    if not m:
        return _clip(re.split(r"[.;]", text, maxsplit=1)[0], width)
    authors = [a.strip() for a in m["authors"].split(",") if a.strip()]
    first = authors[0].replace(" et al.", "").split()[-1]
    lead = f"{first} et al." if len(authors) > 1 or "et al." in m["authors"] else first
    rest = m["rest"]
    abbr = re.match(r"[^(,]*\(([A-Z][A-Za-z]{1,9})\)", rest)
    venue = abbr[1] if abbr else re.split(r"\s\d|,|\(", rest, maxsplit=1)[0].strip()
    year = _YEAR.search(rest)
    tail = f" {year[0]}" if year else ""
    venue = _clip(venue, width - len(lead) - 2 - len(tail))
    return f"{lead}, {venue}{tail}"


def table_rows(preset_names) -> list[list[str]]:
    """One row of text cells (columns :data:`TABLE_HEADER`) per preset of ``preset_names``."""
    rows = []
    for name in preset_names:
        dev = get(name)
        nl = "-"
        if hasattr(dev, "nl_ltp"):
            nl = f"{dev.nl_ltp:g}/{dev.nl_ltd:g}"
        rows.append(
            [
                name,
                type(dev).__name__,
                f"{dev.levels('ltp')}/{dev.levels('ltd')}",
                nl,
                siemens(dev.gmin),
                siemens(dev.gmax),
                f"{dev.variability.c2c_sigma:g}",
                short_citation(dev.citation),
            ]
        )
    return rows
