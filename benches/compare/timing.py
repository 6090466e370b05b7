"""Timing shared by the comparison scripts, the same rule as `lshrec bench`: one untimed pass
(its result is the one scored), then timed passes until they add up to `min_secs`, and the
median pass counts."""
import statistics
import time


def timed(fn, min_secs=0.2):
    """Returns (fn's result from the warm-up pass, median seconds of the timed passes)."""
    out = fn()
    secs = []
    while not secs or (sum(secs) < min_secs and len(secs) < 1000):
        t = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t)
    return out, statistics.median(secs)
