"""What the comparison scripts share: timing by the same rule as `lshrec bench` (one untimed
pass, whose result is the one scored, then timed passes until they add up to `min_secs`, and the
median pass counts), and the query set with its exact top-K."""
import statistics
import time

import numpy as np


def timed(fn, min_secs=0.2):
    """Returns (fn's result from the warm-up pass, median seconds of the timed passes)."""
    out = fn()
    secs = []
    while not secs or (sum(secs) < min_secs and len(secs) < 1000):
        t = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t)
    return out, statistics.median(secs)


def queries_and_truth(users_path, items_path, queries, k):
    """The first `queries` user rows and every item row (float32, C order), and each query's
    exact inner-product top-`k` item rows as a set."""
    users = np.ascontiguousarray(np.load(users_path, mmap_mode="r")[:queries], dtype="float32")
    items = np.ascontiguousarray(np.load(items_path), dtype="float32")
    truth = []
    for s in range(0, len(users), 256):
        scores = users[s : s + 256] @ items.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        truth.extend(set(row) for row in part)
    return users, items, truth
