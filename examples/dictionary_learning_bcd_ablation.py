"""Why BCD SDL-filter underfits ten-class digits (0.891 against LPGD's 0.958), one change at a
time, and whether the principal subspace of the digits discrepancy problem carries the label
direction (docs/DICTIONARY_LEARNING.md, "BCD on digits: ablation").

Parts:

- ``digits``: SDL-filter BCD on ten-class digits (r = 16, multinomial, xi = 1, nu = 1e-2,
  nonnegative, 100 iterations, 5 inner steps, step 1/L, random start) and one change each:
  300 iterations, 20 inner steps, a backtracking line search on the W block, an NMF start,
  xi = 0.1, signed. Test and training accuracy, final objective, how far W moved from its start
  and the ratio of the W block's global Lipschitz bound to that of its reconstruction term.
- ``subspace``: the digits discrepancy problem (section 7 construction, n = 500, 400 train):
  the fraction of the label direction ``w = W_label b_label`` (pixel space) inside the rank-r
  principal subspace of the centred training data (of its norm, and of the variance of the
  label signal ``X w``), and the test accuracy of LR, MF-LR (rank-10 SVD) and SDL-filter BCD
  (xi = 1) with the default step and with the line search.

Usage::

    python examples/dictionary_learning_bcd_ablation.py --parts digits subspace --seeds 0-2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402

import numpy as np  # noqa: E402

from learning_rules.dictionary import NMF, SDL, LogisticRidge, MFLogistic  # noqa: E402
from synapse_sim.data import load_dataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dictionary_learning_study import digits_disc  # noqa: E402

SIGNED = (False, False, False)

#: one change at a time against the baseline (keyword arguments of SDL)
ABLATION = {
    "baseline (100 it., 5 inner, 1/L, random start)": {},
    "300 iterations": {"max_iter": 300},
    "20 inner steps": {"inner_steps": 20},
    "line search (backtracking)": {"step": "backtracking"},
    "NMF start": {"init": "nmf"},
    "xi = 0.1": {"xi": 0.1},
    "signed": {"nonneg": SIGNED},
    "line search + 300 iterations": {"step": "backtracking", "max_iter": 300},
}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def _random_start(p, r, seed):
    """SDL's random BCD start: ``W ~ U[0, 1)`` with its columns scaled into the unit ball (the
    first draw of ``default_rng(seed)``, so passing it as ``init`` changes nothing)."""
    W = np.random.default_rng(seed).random((p, r))
    return W / np.maximum(1.0, np.linalg.norm(W, axis=0))


def _nmf_start(X, r, seed):
    """W from NMF (columns scaled into the unit ball), as an SDL ``init`` dict."""
    W = NMF(r, max_iter=200, random_state=seed).fit(X).components_.T
    return {"W": W / np.maximum(np.linalg.norm(W, axis=0), 1.0)}


def part_digits(seeds, names):
    ds = load_dataset("digits", seed=0)
    Xtr, ytr, Xte, yte = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    rows = []
    for s in seeds:
        for name in names:
            kw = {"xi": 1.0, "nu": 1e-2, "max_iter": 100, **ABLATION[name]}
            if kw.get("init") == "nmf":
                kw["init"] = _nmf_start(Xtr, 16, s)
            else:
                kw["init"] = {"W": _random_start(Xtr.shape[1], 16, s)}
            t0 = time.perf_counter()
            m = SDL(16, link="multinomial", random_state=s, tol=0.0, **kw).fit(Xtr, ytr)
            dt = time.perf_counter() - t0
            W = m.components_.T
            W0 = kw["init"]["W"]
            H = m.codes_.T
            xi = kw["xi"]
            L_rec = 2 * xi * np.linalg.norm(H @ H.T, 2)
            L_link = 0.5 * np.linalg.norm(m.coef_, 2) ** 2 * np.linalg.norm(Xtr, 2) ** 2
            rows.append(
                {
                    "seed": s,
                    "change": name,
                    "test": float(m.score(Xte, yte)),
                    "train": float(m.score(Xtr, ytr)),
                    "f_end": float(m.objective_[-1]),
                    "W_moved": float(np.linalg.norm(W - W0) / np.linalg.norm(W0)),
                    "L_ratio": float((L_rec + L_link) / L_rec),
                    "seconds": dt,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    ref = {
        "LR raw": float(LogisticRidge(link="multinomial", nu=1e-2).fit(Xtr, ytr).score(Xte, yte)),
    }
    print("\n| change | test accuracy | train accuracy | final f | W moved from start | "
          "L / L_rec (end) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in names:
        rs = [r for r in rows if r["change"] == name]

        def mean(k, rs=rs):
            return np.mean([r[k] for r in rs])

        print(
            f"| {name} | {mean('test'):.3f} | {mean('train'):.3f} | {mean('f_end'):.0f} | "
            f"{mean('W_moved'):.2f} | {mean('L_ratio'):.0f} |"
        )
    return {"rows": rows, "reference": ref}


def part_subspace(seeds):
    rows = []
    for s in seeds:
        X, y, w = digits_disc(s, direction=True)
        Xtr, ytr, Xte, yte = X[:400], y[:400], X[400:], y[400:]
        Xc = Xtr - Xtr.mean(axis=0)
        _, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
        row = {"seed": s}
        u = Xc @ w  # the label's linear signal on the training points (centred)
        for r in (2, 5, 10, 20):
            P = Vt[:r].T @ Vt[:r]
            row[f"frac_in_top{r}"] = float(np.linalg.norm(P @ w) / np.linalg.norm(w))
            row[f"label_var_in_top{r}"] = float(np.sum((Xc @ (P @ w)) ** 2) / np.sum(u**2))
        row["LR"] = float(LogisticRidge(nu=1.0).fit(Xtr, ytr).score(Xte, yte))
        row["MF-LR"] = float(
            MFLogistic(10, factorization="svd", nu=1.0).fit(Xtr, ytr).score(Xte, yte)
        )
        for label, kw in (
            ("BCD 50 it.", {}),
            ("BCD line search 50 it.", {"step": "backtracking"}),
            ("BCD line search 300 it.", {"step": "backtracking", "max_iter": 300}),
        ):
            kw = {"max_iter": 50, **kw}
            m = SDL(10, xi=1.0, random_state=s, tol=0.0, **kw).fit(Xtr, ytr)
            row[label] = float(m.score(Xte, yte))
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = [k for k in rows[0] if k != "seed"]
    print("\n| quantity | " + " | ".join(f"seed {r['seed']}" for r in rows) + " | mean |")
    print("|---|" + "---|" * (len(rows) + 1))
    for k in keys:
        vals = [r[k] for r in rows]
        print(f"| {k} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", choices=("digits", "subspace"), required=True)
    p.add_argument("--seeds", type=_seeds, default=[0])
    p.add_argument("--changes", nargs="+", default=list(ABLATION), choices=list(ABLATION))
    p.add_argument("--out", default="runs/dictionary_study")
    args = p.parse_args(argv)
    res = {}
    if "digits" in args.parts:
        res["digits"] = part_digits(args.seeds, args.changes)
    if "subspace" in args.parts:
        res["subspace"] = part_subspace(args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bcd_ablation_{'_'.join(args.parts)}.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
