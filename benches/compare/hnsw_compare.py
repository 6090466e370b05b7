#!/usr/bin/env python3
"""HNSW (hnswlib) on the same .npy files as `lshrec bench --users U.npy --items I.npy`.

    python3 benches/compare/hnsw_compare.py USERS.npy ITEMS.npy [--queries N] [--k 10] [--threads 2]

Builds an inner-product HNSW index (M = 32, ef_construction = 200), reports its build time and,
for several ef, users/s and recall@K against exact inner-product top-K computed with NumPy.
Searches are timed as `lshrec bench` times a setting (`timing.py`).
"""
import argparse
import time

import numpy as np
import hnswlib

from timing import queries_and_truth, timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("users")
    ap.add_argument("items")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--m", type=int, default=32)
    a = ap.parse_args()
    users, items, truth = queries_and_truth(a.users, a.items, a.queries, a.k)
    n, d = items.shape
    idx = hnswlib.Index(space="ip", dim=d)
    idx.init_index(max_elements=n, ef_construction=200, M=a.m)
    idx.set_num_threads(a.threads)
    t = time.perf_counter()
    idx.add_items(items)
    print(f"hnswlib {n} items x {d} dims, M={a.m}: built in {time.perf_counter() - t:.1f} s, {a.threads} threads")
    for ef in [10, 20, 40, 80, 160]:
        idx.set_ef(max(ef, a.k))
        (labels, _), secs = timed(lambda: idx.knn_query(users, k=a.k))
        ups = len(users) / secs
        rec = np.mean([len(set(l) & tr) / a.k for l, tr in zip(labels, truth)])
        print(f"ef={ef:<4} recall@{a.k} {rec:.4f}  {ups:10.0f} users/s")


if __name__ == "__main__":
    main()
