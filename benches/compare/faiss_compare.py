#!/usr/bin/env python3
"""Side-by-side reference numbers for `lshrec bench`, on the same .npy files.

    python3 benches/compare/faiss_compare.py USERS.npy ITEMS.npy [--queries N] [--k 10] [--threads 2]

Measures, with faiss-cpu on `--threads` threads:
- IndexFlatIP batch search (exact inner product): users/s;
- IndexLSH over the simple-LSH transform (a brute-force Hamming scan) with an exact re-rank of
  the top C (IndexRefineFlat), for several C: users/s and recall@K against exact;
- IndexBinaryMultiHash on sign codes of the transform (bucketed multi-probe): users/s and recall.
No exclusions are applied (compare with `lshrec bench --users --items`, which has none either).
Each search is timed as `lshrec bench` times a setting (`timing.py`: a warm-up pass, then the
median of passes adding up to 0.2 s).
"""
import argparse
import time

import numpy as np
import faiss

from timing import timed


def simple_lsh(items, users):
    norms = np.linalg.norm(items, axis=1)
    m = norms.max()
    x = np.hstack([items / m, np.sqrt(np.maximum(0.0, 1.0 - (norms / m) ** 2))[:, None]]).astype("float32")
    q = users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
    q = np.hstack([q, np.zeros((len(q), 1))]).astype("float32")
    return x, q


def recall(got, truth, k):
    hits = [len(set(g[:k]) & set(t[:k])) for g, t in zip(got, truth)]
    return float(np.mean(hits)) / k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("users")
    ap.add_argument("items")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nbits", type=int, default=128)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    users = np.ascontiguousarray(np.load(a.users, mmap_mode="r")[: a.queries], dtype="float32")
    items = np.ascontiguousarray(np.load(a.items), dtype="float32")
    n, d = items.shape
    print(f"{n} items x {d} dims, {len(users)} queries, k = {a.k}, {a.threads} threads, faiss {faiss.__version__}")
    flat = faiss.IndexFlatIP(d)
    flat.add(items)
    (_, truth), secs = timed(lambda: flat.search(users, a.k))
    exact = len(users) / secs
    print(f"IndexFlatIP        recall 1.0000  {exact:10.0f} users/s")

    x, q = simple_lsh(items, users)
    lsh = faiss.IndexLSH(d + 1, a.nbits)
    t = time.perf_counter()
    lsh.add(x)
    print(f"IndexLSH {a.nbits} bits built in {time.perf_counter() - t:.2f} s")
    for c in [1, 4, 16, 64, 256]:
        ref = faiss.IndexRefineFlat(lsh, faiss.swig_ptr(x))
        ref.k_factor = c
        # Re-rank by inner product on the original vectors: the transform's cosine orders the
        # same way within one norm range, so L2 on the transformed vectors is the exact order.
        (_, got), secs = timed(lambda: ref.search(q, a.k))
        ups = len(users) / secs
        print(f"IndexLSH+refine k_factor={c:<4} recall {recall(got, truth, a.k):.4f}  {ups:10.0f} users/s")

    codes = np.packbits((x @ np.random.default_rng(0).standard_normal((d + 1, 64)).astype("float32")) > 0, axis=1)
    qcodes = np.packbits((q @ np.random.default_rng(0).standard_normal((d + 1, 64)).astype("float32")) > 0, axis=1)
    for tables, bits in [(4, 16), (2, 24)]:
        mh = faiss.IndexBinaryMultiHash(64, tables, bits)
        mh.add(codes)
        for nflip in [0, 1, 2]:
            mh.nflip = nflip

            def search():
                _, cand = mh.search(qcodes, 200)
                # exact re-rank of the returned candidates
                got = []
                for qi, cs in enumerate(cand):
                    cs = cs[cs >= 0]
                    if len(cs) == 0:
                        got.append([])
                        continue
                    s = items[cs] @ users[qi]
                    got.append(list(cs[np.argsort(-s)[: a.k]]))
                return got

            got, secs = timed(search)
            ups = len(users) / secs
            print(f"IndexBinaryMultiHash {tables}x{bits} nflip={nflip} recall {recall(got, truth, a.k):.4f}  {ups:10.0f} users/s")


if __name__ == "__main__":
    main()
