import numpy as np
from tests.web.test_disclosure_attack import _fetch, MISSING, truth  # noqa
def test_diag(with_threshold, people, truth, database_url):
    seen, _, _ = _fetch(with_threshold(5), people, truth)
    table = truth
    spans = sorted({(a, b) for _, a, b, _ in seen.windows})
    first, last = spans[0]
    inside = (table.periods >= first) & (table.periods <= last)
    names = sorted(table.labels)
    codes = np.column_stack([table.codes[n][inside] for n in names])
    atoms, inv = np.unique(codes, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), minlength=len(atoms))
    def vec(c):
        keep = np.ones(len(atoms), bool)
        for n, v in c.items():
            keep &= atoms[:, names.index(n)] == (MISSING if v is None else table.labels[n].index(v))
        return keep.astype(float)
    conds = []
    for c, lo, hi, _ in seen.windows:
        if (lo, hi) == (first, last) and c not in conds: conds.append(c)
    conds.append({})
    A = np.array([vec(c) for c in conds])
    t = vec({"channel": "Walk-in", "location": "Eindhoven"})
    x, *_ = np.linalg.lstsq(A.T, t, rcond=None)
    print("resid", np.linalg.norm(A.T @ x - t))
    for i in np.argsort(-np.abs(x))[:40]:
        if abs(x[i]) > 1e-6: print(round(x[i], 3), conds[i], vec(conds[i]) @ w)
    assert False
