"""Dictionary-learning study (docs/DICTIONARY_LEARNING.md, specs/dictionary_learning.md).

Parts (``--parts``, default all):

``gates``
    The planted-problem acceptance checks D1-D6 of section 10 over seeds 0-9 (D5 large-xi and
    D6 over 0-4), with the measured numbers behind each pass rate.
``sklearn``
    D4 against scikit-learn: OnlineDictionaryLearning vs ``DictionaryLearning`` on digits
    (about 30 s per setting for scikit-learn), NMF vs ``sklearn.decomposition.NMF``.
``digits-disc``
    The semi-synthetic discrepancy problem of section 7 on scikit-learn's 8 x 8 digits (feature
    atoms from digits 2 and 5, label atoms from 4 and 7): test accuracy vs xi for LR, MF-LR,
    SDL-filter / SDL-feature (BCD) and SDL-conv-filter (LPGD).
``mnist-disc``
    The same on MNIST-5k (28 x 28, seeds 0-1, xi in {0.01, 1}; not in the default set).
``digits``
    Ten-class digits from learned features: LR on raw pixels, MF-LR (NMF), online DL codes + LR
    and SDL-filter (BCD, multinomial).
``device``
    Device-aware BCD (SDL-filter on P-NMF) on the ideal device at several level counts and on
    published presets, against the float run: accuracy, objective, pulses, saturation.
``device-odl``
    Online dictionary learning on centred digits with the dictionary on those devices
    (column-target and rank-one updates): lasso objective relative to float, pulses.

Usage (the default parts, about 6 minutes on 2 cores)::

    python examples/dictionary_learning_study.py --out runs/dictionary_study

Every number goes to ``OUT/results.json``; markdown tables are printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only thrash
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.linalg import subspace_angles  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import devices  # noqa: E402
from learning_rules.dictionary import (  # noqa: E402
    NMF,
    SDL,
    LogisticRidge,
    MFLogistic,
    OnlineDictionaryLearning,
    planted_disc,
    planted_nmf,
    planted_sub,
)
from synapse_sim.data.datasets import load_dataset  # noqa: E402

SIGNED = (False, False, False)


def _angle(W, Ws):
    return float(np.degrees(subspace_angles(W, Ws)).max())


def _min_cos(W, Ws):
    Wn = W / np.linalg.norm(W, axis=0)
    C = np.abs(Wn.T @ (Ws / np.linalg.norm(Ws, axis=0)))
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].min())


def _rel_inc(f):
    f = np.asarray(f)
    return float(np.max(np.diff(f) / np.abs(f[:-1])))


def _stats(v):
    v = np.asarray(v, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


# ---------------------------------------------------------------------- gates
def part_gates(seeds):
    out = {}
    # D1
    d1 = {}
    probs = {
        "P-NMF": (lambda s: planted_nmf(s), 800, 6, (True, True, False), "logistic"),
        "P-sub": (lambda s: planted_sub(s), 400, 4, SIGNED, "logistic"),
        "P-disc": (lambda s: planted_disc(s), 400, 3, SIGNED, "logistic"),
        "P-sub K=3": (lambda s: planted_sub(s, multiclass=True), 400, 4, SIGNED, "multinomial"),
    }
    for name, (gen, ntr, r, nonneg, link) in probs.items():
        for mode in ("filter", "feature"):
            for trust in (None, (5.0, 1.0)):
                worst = -np.inf
                for s in seeds:
                    X, y, _, _ = gen(s)
                    m = SDL(r, mode=mode, link=link, nonneg=nonneg, max_iter=100, tol=0,
                            random_state=s, trust_radius=trust).fit(X[:ntr], y[:ntr])  # fmt: skip
                    worst = max(worst, _rel_inc(m.objective_))
                d1[f"{name} {mode} trust={trust is not None}"] = worst
        if nonneg == SIGNED:
            for mode in ("filter", "feature"):
                worst = -np.inf
                for s in seeds:
                    X, y, _, _ = gen(s)
                    m = SDL(r, mode=mode, solver="lpgd", link=link, nonneg=SIGNED, xi=0.1,
                            max_iter=100, tol=0).fit(X[:ntr], y[:ntr])  # fmt: skip
                    worst = max(worst, _rel_inc(m.objective_))
                d1[f"{name} {mode} LPGD"] = worst
    out["D1_max_relative_increase"] = d1
    # D2
    d2 = {"nmf": [], "sdl_xi10_200": [], "sdl_xi1_600": [], "sdl_xi1_200": [], "lpgd": [],
          "bcd": [], "bcd_xi0.1": []}  # fmt: skip
    for s in seeds:
        X, y, Ws, _ = planted_nmf(s)
        Xtr, ytr = X[:800], y[:800]
        d2["nmf"].append(_min_cos(NMF(6, max_iter=300, random_state=s).fit(Xtr).components_.T, Ws))
        for key, xi, it in (("sdl_xi10_200", 10.0, 200), ("sdl_xi1_600", 1.0, 600),
                            ("sdl_xi1_200", 1.0, 200)):  # fmt: skip
            m = SDL(6, xi=xi, max_iter=it, random_state=s).fit(Xtr, ytr)
            d2[key].append(_min_cos(m.components_.T, Ws))
        X, y, Ws, _ = planted_sub(s)
        Xtr, ytr = X[:400], y[:400]
        m = SDL(4, solver="lpgd", nonneg=SIGNED, xi=1.0, max_iter=300).fit(Xtr, ytr)
        d2["lpgd"].append(_angle(m.components_.T, Ws))
        m = SDL(4, nonneg=SIGNED, xi=1.0, max_iter=150, random_state=s).fit(Xtr, ytr)
        d2["bcd"].append(_angle(m.components_.T, Ws))
        m = SDL(4, nonneg=SIGNED, xi=0.1, max_iter=150, random_state=s).fit(Xtr, ytr)
        d2["bcd_xi0.1"].append(_angle(m.components_.T, Ws))
    out["D2"] = {
        k: {"values": v, **_stats(v),
            "pass": int(sum((x >= 0.95) if k.startswith(("nmf", "sdl")) else (x <= 5.0)
                            for x in v))}
        for k, v in d2.items()
    }  # fmt: skip
    # D3
    rows = []
    for s in seeds:
        X, y, _, _ = planted_disc(s)
        Xtr, ytr, Xte, yte = X[:400], y[:400], X[400:], y[400:]
        bcd = SDL(3, nonneg=SIGNED, xi=0.01, max_iter=150, random_state=s).fit(Xtr, ytr)
        lp = SDL(3, solver="lpgd", nonneg=SIGNED, xi=0.01, max_iter=300).fit(Xtr, ytr)
        feat = SDL(3, mode="feature", nonneg=SIGNED, xi=0.01, max_iter=150, random_state=s)
        feat.fit(Xtr, ytr)
        mf = MFLogistic(3, factorization="svd", nu=1e-3).fit(Xtr, ytr)
        lr = LogisticRidge(nu=1e-3).fit(Xtr, ytr)
        rows.append([bcd.score(Xte, yte), lp.score(Xte, yte), feat.score(Xte, yte),
                     mf.score(Xte, yte), lr.score(Xte, yte), lp.objective_[-1]])  # fmt: skip
    a = np.array(rows)
    out["D3"] = {
        "bcd": float(a[:, 0].mean()), "lpgd": float(a[:, 1].mean()),
        "feature_bcd": float(a[:, 2].mean()), "mf_lr": float(a[:, 3].mean()),
        "lr_raw": float(a[:, 4].mean()), "lpgd_objective": _stats(a[:, 5]),
        "per_seed": a.tolist(),
    }  # fmt: skip
    # D5 large xi and D6
    ang = []
    for s in seeds[:5]:
        X, y, _, _ = planted_sub(s)
        Xtr, ytr = X[:400], y[:400]
        U = np.linalg.svd(Xtr.T, full_matrices=False)[0][:, :4]
        b = SDL(4, nonneg=SIGNED, xi=1e6, max_iter=150, random_state=s).fit(Xtr, ytr)
        lp = SDL(4, solver="lpgd", nonneg=SIGNED, xi=1e6, max_iter=100).fit(Xtr, ytr)
        ang.append([_angle(b.components_.T, U), _angle(lp.components_.T, U)])
    out["D5_large_xi_angle_deg"] = {"bcd": _stats(np.array(ang)[:, 0]),
                                    "lpgd": _stats(np.array(ang)[:, 1])}  # fmt: skip
    dev = devices.get("ideal", levels_ltp=2048, levels_ltd=2048)
    d6 = []
    for s in seeds[:5]:
        f, d = _device_pair(s, dev, {"seed": s})
        d6.append([f["acc"], d["acc"], d["obj"] / f["obj"] - 1, d["pulses"]])
    out["D6"] = np.array(d6).tolist()
    return out


def _device_pair(seed, dev, opts, max_iter=100, float_cache={}):  # noqa: B006
    X, y, _, _ = planted_nmf(seed)
    Xtr, ytr, Xte, yte = X[:800], y[:800], X[800:], y[800:]
    if seed not in float_cache:
        f = SDL(6, xi=10.0, max_iter=max_iter, random_state=seed).fit(Xtr, ytr)
        float_cache[seed] = {"acc": f.score(Xte, yte), "obj": float(f.objective_[-1]),
                             "W": f.components_}  # fmt: skip
    d = SDL(6, xi=10.0, max_iter=max_iter, random_state=seed, device=dev, device_options=opts)
    d.fit(Xtr, ytr)
    Wd, Wf = d.components_, float_cache[seed]["W"]
    cos = np.abs(np.sum(Wd * Wf, axis=1)) / (
        np.linalg.norm(Wd, axis=1) * np.linalg.norm(Wf, axis=1) + 1e-300
    )
    return float_cache[seed], {
        "acc": d.score(Xte, yte), "obj": float(d.objective_[-1]),
        "pulses": int(d.pulses_.sum()), "sat": d.device_array_.saturation(),
        "atom_cos_min": float(cos.min()),
        "obj_rises": int(np.sum(np.diff(d.objective_) > 1e-10 * np.abs(d.objective_[:-1]))),
    }  # fmt: skip


# ---------------------------------------------------------------------- sklearn
def part_sklearn(seeds):
    from sklearn.decomposition import NMF as SKNMF
    from sklearn.decomposition import DictionaryLearning, sparse_encode

    X = load_dataset("digits").x_train
    X = np.vstack([X, load_dataset("digits").x_test])
    X = X - X.mean(axis=0)

    def ev(D, a):
        U = sparse_encode(X, D, algorithm="lasso_cd", alpha=a)
        R = X - U @ D
        return 0.5 * np.sum(R * R) + a * np.abs(U).sum(), np.linalg.norm(R) / np.linalg.norm(X)

    out = {"online_dl": []}
    for r, a in ((8, 0.05), (16, 0.1), (32, 0.5)):
        t = time.perf_counter()
        sk = DictionaryLearning(r, alpha=a, fit_algorithm="cd", transform_algorithm="lasso_cd",
                                max_iter=200, random_state=0).fit(X)  # fmt: skip
        t_sk = time.perf_counter() - t
        o0, e0 = ev(sk.components_, a)
        for s in (0, 1):
            t = time.perf_counter()
            m = OnlineDictionaryLearning(r, alpha=a, n_epochs=10, batch_size=64, random_state=s)
            m.fit(X)
            t_m = time.perf_counter() - t
            o1, e1 = ev(m.components_, a)
            out["online_dl"].append({"r": r, "alpha": a, "seed": s, "objective_ratio": o1 / o0,
                                     "error_ratio": e1 / e0, "t_sklearn_s": t_sk,
                                     "t_online_s": t_m})  # fmt: skip
    ratios = []
    for s in seeds:
        Xn, _, _, _ = planted_nmf(s)
        Xtr = Xn[:800]
        ours = NMF(6, max_iter=300, random_state=s).fit(Xtr).reconstruction_err_
        Xp = np.maximum(Xtr, 0)
        sk = SKNMF(6, init="nndsvda", max_iter=2000).fit(Xp)
        ratios.append(ours / np.linalg.norm(Xtr - sk.transform(Xp) @ sk.components_))
    out["nmf_error_ratio"] = {"values": ratios, **_stats(ratios)}
    return out


# ---------------------------------------------------------------------- digits discrepancy
def digits_disc(seed, n=500, noise=0.5, dataset="digits", direction=False):
    """Section 7's semi-synthetic problem on 8 x 8 digits (20 feature atoms from 2s and 5s,
    label atoms from 4s (+1) and 7s (-1)); with ``direction`` also the label direction
    ``W_label b_label`` in pixel space."""
    ds = load_dataset(dataset, seed=0)
    Xall = np.vstack([ds.x_train, ds.x_test])
    yall = np.concatenate([ds.y_train, ds.y_test])
    rng = np.random.default_rng(seed)

    def pick(d, k):
        return Xall[rng.choice(np.flatnonzero(yall == d), size=k, replace=False)].T

    Wf = np.hstack([pick(2, 10), pick(5, 10)])  # (64, 20)
    Wl = np.hstack([pick(4, 10), pick(7, 10)])
    bl = np.r_[np.ones(10), -np.ones(10)]
    H = rng.random((20, n))
    Xc = Wf @ H
    u = bl @ (Wl.T @ Xc)
    y = (rng.random(n) < 1 / (1 + np.exp(-(u - u.mean())))).astype(int)
    X = (Xc + noise * rng.standard_normal(Xc.shape)).T
    return (X, y, Wl @ bl) if direction else (X, y)


def part_digits_disc(seeds, xis=(0.01, 0.1, 1.0, 5.0, 10.0), dataset="digits"):
    rows = {"LR": [], "MF-LR": []}
    res = {}
    for s in seeds:
        X, y = digits_disc(s, dataset=dataset)
        ntr = 400
        Xtr, ytr, Xte, yte = X[:ntr], y[:ntr], X[ntr:], y[ntr:]
        rows["LR"].append(LogisticRidge(nu=1.0).fit(Xtr, ytr).score(Xte, yte))
        rows["MF-LR"].append(MFLogistic(10, factorization="svd", nu=1.0).fit(Xtr, ytr)
                             .score(Xte, yte))  # fmt: skip
        for xi in xis:
            for name, kw in (
                ("SDL-filter BCD", dict(mode="filter")),
                ("SDL-feature BCD", dict(mode="feature")),
                ("SDL-conv-filter LPGD", dict(solver="lpgd", nonneg=SIGNED)),
            ):
                m = SDL(10, xi=xi, max_iter=50 if "BCD" in name else 200, random_state=s, **kw)
                res.setdefault((name, xi), []).append(m.fit(Xtr, ytr).score(Xte, yte))
    out = {k: float(np.mean(v)) for k, v in rows.items()}
    out["by_xi"] = {f"{n} xi={xi}": float(np.mean(v)) for (n, xi), v in res.items()}
    return out


# ---------------------------------------------------------------------- digits 10 classes
def part_digits(seeds, r=16):
    out = {}
    ds = load_dataset("digits", seed=0)
    Xtr, ytr, Xte, yte = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    mu = Xtr.mean(axis=0)
    acc = {"LR raw": [], "MF-LR (NMF)": [], "online DL + LR": [], "SDL-filter BCD": [],
           "SDL-conv-filter LPGD": []}  # fmt: skip
    for s in seeds:
        acc["LR raw"].append(LogisticRidge(link="multinomial", nu=1e-2).fit(Xtr, ytr)
                             .score(Xte, yte))  # fmt: skip
        mf = MFLogistic(r, link="multinomial", nu=1e-2, random_state=s).fit(Xtr, ytr)
        acc["MF-LR (NMF)"].append(mf.score(Xte, yte))
        dl = OnlineDictionaryLearning(r, alpha=0.1, n_epochs=10, batch_size=64, random_state=s)
        dl.fit(Xtr - mu)
        lr = LogisticRidge(link="multinomial", nu=1e-2).fit(dl.transform(Xtr - mu), ytr)
        acc["online DL + LR"].append(lr.score(dl.transform(Xte - mu), yte))
        m = SDL(r, link="multinomial", xi=1.0, nu=1e-2, max_iter=100, random_state=s)
        acc["SDL-filter BCD"].append(m.fit(Xtr, ytr).score(Xte, yte))
        m = SDL(r, link="multinomial", solver="lpgd", nonneg=SIGNED, xi=0.1, nu=1e-2,
                max_iter=100)  # fmt: skip
        acc["SDL-conv-filter LPGD"].append(m.fit(Xtr, ytr).score(Xte, yte))
    out["accuracy_r16"] = {k: _stats(v) for k, v in acc.items()}
    return out


# ---------------------------------------------------------------------- device
def part_device(seeds):
    cases = {
        "ideal 2048": devices.get("ideal", levels_ltp=2048, levels_ltd=2048),
        "ideal 1024": devices.get("ideal"),
        "ideal 256": devices.get("ideal", levels_ltp=256, levels_ltd=256),
        "ideal 64": devices.get("ideal", levels_ltp=64, levels_ltd=64),
        "ideal 16": devices.get("ideal", levels_ltp=16, levels_ltd=16),
    }
    for name in ("ag_a_si", "epiram", "taox_hfox", "alox_hfo2"):
        cases[name] = devices.get(name)
    extra = {"rounding": "stochastic"}
    cases["ideal 64 stochastic"] = (cases["ideal 64"], extra)
    cases["epiram stochastic"] = (cases["epiram"], extra)
    out = {}
    for name, dev in cases.items():
        dev, opts = dev if isinstance(dev, tuple) else (dev, {})
        rows = []
        for s in seeds:
            f, d = _device_pair(s, dev, {"seed": s, **opts})
            sat = d["sat"]["high"] + d["sat"]["low"]
            rows.append(
                [f["acc"], d["acc"], d["obj"] / f["obj"] - 1, d["pulses"], sat,
                 d["atom_cos_min"], d["obj_rises"]]
            )  # fmt: skip
        a = np.array(rows)
        out[name] = {
            "levels": int(dev.levels("ltp")), "nl": [float(getattr(dev, "nl_ltp", 0.0)),
                                                    float(getattr(dev, "nl_ltd", 0.0))],
            "acc_float": float(a[:, 0].mean()), "acc_device": float(a[:, 1].mean()),
            "objective_excess": float(a[:, 2].mean()), "pulses": float(a[:, 3].mean()),
            "saturated": float(a[:, 4].mean()), "atom_cos_min": float(a[:, 5].min()),
            "objective_rises": float(a[:, 6].mean()),
        }  # fmt: skip
    return out


def part_device_odl(seeds, r=16, alpha=0.1):
    """Online DL on centred digits with the dictionary on a device (3 epochs, batch 64)."""
    ds = load_dataset("digits", seed=0)
    X = np.vstack([ds.x_train, ds.x_test])
    X = X - X.mean(axis=0)

    def lasso_obj(D):
        m = OnlineDictionaryLearning(r, alpha=alpha)
        m.components_, m.n_features_in_ = D, X.shape[1]
        U = m.transform(X)
        R = X - U @ D
        return 0.5 * np.sum(R * R) + alpha * np.abs(U).sum()

    ideal = {k: devices.get("ideal", levels_ltp=k, levels_ltd=k) for k in (2048, 256, 64)}
    cases = {
        "float": (None, {}, "targets"),
        "float rank-one": (None, {}, "rank_one"),
        "ideal 2048": (ideal[2048], {}, "targets"),
        "ideal 2048 rank-one": (ideal[2048], {}, "rank_one"),
        "ideal 256": (ideal[256], {}, "targets"),
        "ideal 64": (ideal[64], {}, "targets"),
        "ideal 64 stochastic": (ideal[64], {"rounding": "stochastic"}, "targets"),
    }
    for name in ("ag_a_si", "epiram", "taox_hfox", "alox_hfo2"):
        cases[name] = (devices.get(name), {}, "targets")
    out, base = {}, {}
    for name, (dev, opts, upd) in cases.items():
        objs, pulses = [], []
        for s in seeds:
            m = OnlineDictionaryLearning(
                r, alpha=alpha, n_epochs=3, batch_size=64, random_state=s, update=upd, eta=0.5,
                device=dev, device_options=None if dev is None else {"seed": s, **opts},
            )  # fmt: skip
            o = lasso_obj(m.fit(X).components_)
            if name == "float":
                base[s] = o
            objs.append(o / base[s])
            pulses.append(int(m.pulses_.sum()) if dev is not None else 0)
        out[name] = {"objective_vs_float": _stats(objs), "pulses": float(np.mean(pulses))}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/dictionary_study")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--parts", default="gates,sklearn,digits-disc,digits,device,device-odl")
    args = ap.parse_args(argv)
    seeds = list(range(args.seeds))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {
        "gates": lambda: part_gates(seeds),
        "sklearn": lambda: part_sklearn(seeds),
        "digits-disc": lambda: part_digits_disc(seeds[:4]),
        "mnist-disc": lambda: part_digits_disc(seeds[:2], (0.01, 1.0), "mnist5k"),
        "digits": lambda: part_digits(seeds[:3]),
        "device": lambda: part_device(seeds[:3]),
        "device-odl": lambda: part_device_odl(seeds[:3]),
    }
    results = {}
    path = out_dir / "results.json"
    if path.exists():
        results = json.loads(path.read_text())
    for p in args.parts.split(","):
        t = time.perf_counter()
        results[p] = parts[p]()
        results[p]["seconds"] = time.perf_counter() - t
        path.write_text(json.dumps(results, indent=1))
        print(f"## {p} ({results[p]['seconds']:.0f} s)")
        print(json.dumps(results[p], indent=1))


if __name__ == "__main__":
    main()
