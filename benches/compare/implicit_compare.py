#!/usr/bin/env python3
"""Reference training times from the `implicit` library on the same split as lshrec.

    lshrec data split data/ml-100k --method per-user:0.2 --min-rating 4 --seed 42 --out split/
    python3 benches/compare/implicit_compare.py split/train.tsv split/test.tsv [--threads 2]

Prints the fit time of ALS (64 factors, 30 iterations) and the time per epoch of BPR (64 factors),
with NDCG@10 under protocol P2 (full ranking, training positives excluded), so that
`lshrec train --train split/train.tsv --test split/test.tsv --model ials --epochs 30 --valid-frac 0`
can be compared in one run.
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp


def load(path, users, items):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            u, i = line.split("\t")[:2]
            rows.append((users.setdefault(u, len(users)), items.setdefault(i, len(items))))
    return rows


def ndcg10(uf, itf, train, test):
    scores = uf @ itf.T
    total, n = 0.0, 0
    for u in range(train.shape[0]):
        t = set(test[u].indices)
        if not t:
            continue
        s = scores[u].copy()
        s[train[u].indices] = -np.inf
        top = np.argsort(-s)[:10]
        dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(top) if i in t)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(t), 10)))
        total += dcg / idcg
        n += 1
    return total / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import implicit
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    users, items = {}, {}
    tr = load(a.train, users, items)
    te = load(a.test, users, items)
    shape = (len(users), len(items))
    mk = lambda rows: sp.csr_matrix((np.ones(len(rows), dtype=np.float32), ([r[0] for r in rows], [r[1] for r in rows])), shape=shape)
    train, test = mk(tr), mk(te)
    print(f"implicit {implicit.__version__}, {a.threads} threads, {shape[0]} users x {shape[1]} items, {train.nnz} train pairs")
    als = AlternatingLeastSquares(factors=64, iterations=30, regularization=0.05, num_threads=a.threads, random_state=42)
    t = time.perf_counter()
    als.fit(train, show_progress=False)
    fit = time.perf_counter() - t
    print(f"ALS 64 factors, 30 iterations: fit {fit:.3f} s, NDCG@10 {ndcg10(als.user_factors, als.item_factors, train, test):.4f}")
    bpr = BayesianPersonalizedRanking(factors=64, iterations=100, learning_rate=0.05, regularization=0.01, num_threads=a.threads, random_state=42)
    t = time.perf_counter()
    bpr.fit(train, show_progress=False)
    fit = time.perf_counter() - t
    print(f"BPR 64 factors, 100 epochs: {fit / 100 * 1000:.2f} ms/epoch, NDCG@10 {ndcg10(bpr.user_factors, bpr.item_factors, train, test):.4f}")


if __name__ == "__main__":
    main()
