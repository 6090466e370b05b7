#!/usr/bin/env python3
"""The P2 references' own split, drawn with NumPy, and EASE on it: the check that
`lshrec data split … --method per-user-numpy:0.2 --seed 42` is the split PROTOCOLS.md's
figures were measured on.

    python3 benches/compare/reference_split.py data/ml-100k/ml-100k.inter [--out DIR]

For each user in id order, the positives in item id order (a CSR row), one
`numpy.random.RandomState(42)` stream, `permutation(n)[:floor(0.2 n)]` to test; users with fewer
than 5 positives draw nothing. EASE on it reproduces PROTOCOLS.md exactly: λ 300 on ratings ≥ 4
gives P@10 .2207, R@10 .2574, NDCG@10 .3214, MRR@10 .5263, HR@10 .8294; λ 500 with every rating
a positive gives NDCG@10 .4515, P@10 .3730. With --out, writes the four splits' train.tsv and
test.tsv (user, item, rating, timestamp) under DIR/ge4 and DIR/all, to compare with lshrec's.
"""
import argparse
import os

import numpy as np
import pandas as pd


def split(pos, seed=42, frac=0.2, min_n=5):
    rng = np.random.RandomState(seed)
    pos = pos.sort_values(["user", "item"], kind="stable")
    test = np.zeros(len(pos), dtype=bool)
    start = 0
    for _, n in pos.groupby("user", sort=True).size().items():
        if n >= min_n:
            k = int(frac * n)
            test[start + rng.permutation(n)[:k]] = True
        start += n
    return pos[~test], pos[test]


def ease_metrics(train, test, lam, k=10):
    nu, ni = train.user.max() + 1, max(train.item.max(), test.item.max()) + 1
    x = np.zeros((nu, ni))
    x[train.user.values, train.item.values] = 1.0
    g = x.T @ x
    g[np.diag_indices(ni)] += lam
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    b[np.diag_indices(ni)] = 0.0
    s = x @ b
    s[x > 0] = -np.inf
    out = {"P": [], "R": [], "NDCG": [], "MRR": [], "HR": []}
    for u, items in test.groupby("user").item.apply(set).items():
        top = np.argsort(-s[u], kind="stable")[:k]
        hits = np.array([i in items for i in top], dtype=float)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(items), k)))
        out["P"].append(hits.sum() / k)
        out["R"].append(hits.sum() / len(items))
        out["NDCG"].append((hits / np.log2(np.arange(k) + 2)).sum() / idcg)
        first = np.flatnonzero(hits)
        out["MRR"].append(1 / (first[0] + 1) if len(first) else 0.0)
        out["HR"].append(float(len(first) > 0))
    return {m: round(float(np.mean(v)), 4) for m, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inter", help="ml-100k.inter (RecBole atomic) or u.data (GroupLens)")
    ap.add_argument("--out")
    a = ap.parse_args()
    sep_header = open(a.inter).readline().startswith("user_id")
    df = pd.read_csv(a.inter, sep="\t", header=0 if sep_header else None)
    df.columns = ["user", "item", "rating", "timestamp"]
    for name, pos, lam in [("ge4", df[df.rating >= 4], 300.0), ("all", df, 500.0)]:
        train, test = split(pos)
        print(f"{name}: {len(train)} train, {len(test)} test, EASE λ {lam:g}:",
              ease_metrics(train, test, lam))
        if a.out:
            os.makedirs(os.path.join(a.out, name), exist_ok=True)
            train.to_csv(os.path.join(a.out, name, "train.tsv"), sep="\t", index=False)
            test.to_csv(os.path.join(a.out, name, "test.tsv"), sep="\t", index=False)


if __name__ == "__main__":
    main()
