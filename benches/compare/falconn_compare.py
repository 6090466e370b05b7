#!/usr/bin/env python3
"""FALCONN (cross-polytope and hyperplane LSH) on the same .npy files as
`lshrec bench --users U.npy --items I.npy`.

    python3 benches/compare/falconn_compare.py USERS.npy ITEMS.npy [--queries N] [--k 10]
        [--tables 10,50] [--bits 18] [--family cp|hp] [--center] [--ranges R] [--probes 160,320]

FALCONN 1.3.1 answers nearest-neighbour queries on the sphere, so maximum inner product goes
through the simple-LSH transform (Neyshabur & Srebro 2015), as lshrec's index does: each item x
becomes [x / M, sqrt(1 - |x / M|^2)] with M the largest item norm, and each query q becomes
[q / |q|, 0]. On those vectors FALCONN's negative-inner-product ranking of its candidates is the
exact inner-product ranking of the original ones, so its recall is that of its candidate set.
With --center, the items are also centred on their mean, as FALCONN's guide advises for its
hashes: a query's scores against the centred items differ from the true ones by a per-query
constant, so the ranking, and the recall, keep their meaning. With --ranges R the items are
split by norm into R ranges, each with its own transform and FALCONN index, as lshrec's index
splits them (see the comment in `main`); the bits per key are then capped at log2 of the range's
items less 2.

FALCONN's Python query objects answer one query at a time on one thread, so this compares per
core: run `lshrec bench … --threads 1` beside it. Searches are timed as `lshrec bench` times a
setting (`timing.py`). FALCONN 1.3.1's bundled pybind11 fails to build on Python 3.11; it
built and ran under Python 3.8 (`pip install numpy falconn` in a 3.8 virtual environment).
"""
import argparse
import time

import numpy as np
import falconn

from timing import queries_and_truth, timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("users")
    ap.add_argument("items")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tables", default="10,50")
    ap.add_argument("--bits", type=int, default=18)
    ap.add_argument("--family", choices=["cp", "hp"], default="cp")
    ap.add_argument("--center", action="store_true")
    ap.add_argument("--probes", default="")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--ranges", type=int, default=1)
    a = ap.parse_args()
    users, items, truth = queries_and_truth(a.users, a.items, a.queries, a.k)
    n, d = items.shape

    # Norm ranges (Yan et al. 2018, as lshrec's index): items sorted by norm into equal-count
    # ranges, each with its own transform (its own largest norm) and its own FALCONN index;
    # ranges are searched from the largest norms down and skipped once |q| times a range's
    # largest norm cannot beat the K-th score found so far. One range is plain simple-LSH.
    t = time.perf_counter()
    norms = np.linalg.norm(items, axis=1)
    order = np.argsort(-norms, kind="stable")
    parts = np.array_split(order, a.ranges)
    ranges = []
    for ids in parts:
        m = norms[ids].max()
        x = items[ids] / m
        tail = np.sqrt(np.maximum(0.0, 1.0 - (norms[ids] / m) ** 2)).astype("float32")
        data = np.hstack([x, tail[:, None]]).astype("float32")
        if a.center:
            data -= data.mean(axis=0)
        ranges.append((ids, float(m), np.ascontiguousarray(data)))
    qnorm = np.linalg.norm(users, axis=1)
    queries = np.hstack([users / qnorm[:, None],
                         np.zeros((len(users), 1), dtype="float32")]).astype("float32")
    transform_secs = time.perf_counter() - t

    for tables in [int(x) for x in a.tables.split(",")]:
        t = time.perf_counter()
        built = []
        for ids, m, data in ranges:
            p = falconn.LSHConstructionParameters()
            p.dimension = d + 1
            p.lsh_family = (falconn.LSHFamily.CrossPolytope if a.family == "cp"
                            else falconn.LSHFamily.Hyperplane)
            p.distance_function = falconn.DistanceFunction.NegativeInnerProduct
            p.storage_hash_table = falconn.StorageHashTable.BitPackedFlatHashTable
            p.l = tables
            p.num_rotations = 1
            p.seed = a.seed
            p.num_setup_threads = 2
            bits = min(a.bits, max(1, int(np.log2(len(ids))) - 2)) if a.ranges > 1 else a.bits
            falconn.compute_number_of_hash_functions(bits, p)
            idx = falconn.LSHIndex(p)
            idx.setup(data)
            built.append((ids, m, idx, bits, p.k))
        build = time.perf_counter() - t + transform_secs
        print(f"FALCONN {a.family} {n} items x {d + 1} dims in {a.ranges} norm range(s): "
              f"{tables} tables x {built[0][3]} bits (k={built[0][4]}){' centred' if a.center else ''}: "
              f"built in {build:.1f} s (2 setup threads)")
        probes = ([int(x) for x in a.probes.split(",")] if a.probes
                  else [tables * f for f in (1, 2, 4, 8, 16, 32, 64, 128)])
        for nprobe in probes:
            qos = [(ids, m, idx.construct_query_object(num_probes=nprobe)) for ids, m, idx, _, _ in built]
            stats = {"ranges": 0, "falconn": 0.0}

            def run():
                out = []
                for qi in range(len(queries)):
                    q, qt, qn = users[qi], queries[qi], qnorm[qi]
                    best_ids, best = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
                    for ids, m, qo in qos:
                        if len(best) == a.k and qn * m <= best.min():
                            break
                        stats["ranges"] += 1
                        t0 = time.perf_counter()
                        local = qo.find_k_nearest_neighbors(qt, a.k)
                        stats["falconn"] += time.perf_counter() - t0
                        got = ids[local]
                        sc = items[got] @ q
                        best_ids = np.concatenate([best_ids, got])
                        best = np.concatenate([best, sc])
                        if len(best) > a.k:
                            keep = np.argpartition(-best, a.k)[: a.k]
                            best_ids, best = best_ids[keep], best[keep]
                    out.append(best_ids)
                return out

            labels, secs = timed(run)
            stats["ranges"], stats["falconn"] = 0, 0.0
            for _, _, qo in qos:
                qo.reset_query_statistics()
            run()
            cands = sum(qo.get_query_statistics().average_num_unique_candidates
                        * qo.get_query_statistics().num_queries for _, _, qo in qos) / len(queries)
            ups = len(queries) / secs
            rec = np.mean([len(set(l) & tr) / a.k for l, tr in zip(labels, truth)])
            # FALCONN's own calls alone: the rate it would reach if the merge across ranges
            # (NumPy, per query) cost nothing.
            own = len(queries) / stats["falconn"]
            print(f"probes={nprobe:<6} recall@{a.k} {rec:.4f}  {ups:9.0f} users/s (1 thread; "
                  f"{own:.0f} in FALCONN's calls alone)  candidates/query {cands:.0f}  "
                  f"ranges/query {stats['ranges'] / len(queries):.1f}")
        del built


if __name__ == "__main__":
    main()
