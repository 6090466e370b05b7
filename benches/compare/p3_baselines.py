#!/usr/bin/env python3
"""Protocol P3 (item cold start) reference baselines on an lshrec cold-items split.

Usage: python3 p3_baselines.py SPLIT_DIR   (needs numpy)
SPLIT_DIR is what `lshrec data split DATA --method cold-items:0.1 --min-rating 4 --out SPLIT_DIR`
writes: train.tsv, test.tsv, items.tsv, cold_items.txt. Each test user ranks only the cold items;
NDCG@10 as in PROTOCOLS.md. Baselines: random order (expected value), genre popularity (mean warm
popularity of the item's genres), and ridge regression of warm popularity on genres + decade.
"""
import csv
import sys
from collections import Counter

import numpy as np


def rows(path):
    with open(path) as f:
        return list(csv.reader(f, delimiter="\t"))[1:]


def main(d):
    train = [(r[0], r[1]) for r in rows(f"{d}/train.tsv")]
    test = [(r[0], r[1]) for r in rows(f"{d}/test.tsv")]
    cold = [l.strip() for l in open(f"{d}/cold_items.txt") if l.strip()]
    items = {r[0]: (r[2].split("|") if r[2] else [], int(r[3]) if r[3] else None) for r in rows(f"{d}/items.tsv")}
    feats = sorted({("g", g) for gs, _ in items.values() for g in gs} | {("d", y // 10) for _, y in items.values() if y})
    index = {f: k for k, f in enumerate(feats)}

    def vec(i):
        v = np.zeros(len(feats))
        gs, y = items[i]
        for g in gs:
            v[index[("g", g)]] = 1.0
        if y:
            v[index[("d", y // 10)]] = 1.0
        return v

    pop = Counter(i for _, i in train)
    warm = list(pop)
    x = np.array([vec(i) for i in warm])
    y = np.array([pop[i] for i in warm], float)
    w = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ y)
    ridge = {i: vec(i) @ w for i in cold}
    genre_pop = {}
    for i in warm:
        for g in items[i][0]:
            genre_pop.setdefault(g, []).append(pop[i])
    gp = {i: np.mean([np.mean(genre_pop.get(g, [0])) for g in items[i][0]] or [0]) for i in cold}
    relevant = {}
    for u, i in test:
        relevant.setdefault(u, set()).add(i)
    disc = [1 / np.log2(k + 2) for k in range(10)]

    def ndcg(score):
        order = sorted(cold, key=lambda i: (-score[i], i))[:10]
        total = 0.0
        for rel in relevant.values():
            dcg = sum(disc[k] for k, i in enumerate(order) if i in rel)
            total += dcg / sum(disc[: min(len(rel), 10)])
        return total / len(relevant)

    rand = np.mean([sum(disc) * len(r) / len(cold) / sum(disc[: min(len(r), 10)]) for r in relevant.values()])
    print(f"{d}: {len(relevant)} users, {len(cold)} cold items")
    print(f"  random (expected)   NDCG@10 {rand:.4f}")
    print(f"  genre popularity    NDCG@10 {ndcg(gp):.4f}")
    print(f"  ridge popularity    NDCG@10 {ndcg(ridge):.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
