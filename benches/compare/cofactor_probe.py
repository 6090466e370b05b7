#!/usr/bin/env python3
"""Probe: does CoFactor (Liang et al. 2016) help iALS on P2, every rating a positive?

Usage: python3 cofactor_probe.py MU[,MU..] SHIFT SPLIT_DIR [SPLIT_DIR..]   (needs numpy)
SPLIT_DIR as for user_weight_probe.py beside this one.

The item vectors factorise the ratings (iALS, lshrec's every-rating defaults, exact solves, 15
sweeps) and, weighted by MU, the shifted positive PMI of item co-occurrence (users who rated
both), m_ij = max(log(#ij·D / (#i·#j)) − SHIFT, 0), against context vectors γ_j and biases:

    Σ c_ui (p_ui − x_uᵀy_i)² + MU Σ_{m_ij>0} (m_ij − y_iᵀγ_j − b_i − c_j)² + regularisers

MU 0 is plain iALS. Prints NDCG@10 (full ranking, training items excluded) per split, the mean
and the time.

Measured on three validation splits of the seed-42 training part (per-user:0.1), SHIFT 0:
MU 0 .2013, .01 .2013, .03 .2016, .1 .2014, .3 .2022, 1 .2014, 3 .1965, 10 .1842. The best is
within the splits' noise (+.0009), so it was not taken further.
"""
import sys
import time

import numpy as np

from softmax_probe import ndcg10
from user_weight_probe import ALPHA, DIM, REG, SEED, SWEEPS, W0, load


def sppmi(train, shift):
    s = (train > 0).astype(np.float64)
    c = s.T @ s
    np.fill_diagonal(c, 0)
    d = c.sum()
    n = c.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.log(c * d / np.outer(n, n)) - shift
    m[~np.isfinite(m)] = 0
    return np.maximum(m, 0)

def run(train, mu, shift):
    nu, ni = train.shape
    seen = train > 0
    conf = np.where(seen, 1 + ALPHA * train, 0.0)
    n_u = seen.sum(1).astype(np.float64)
    rng = np.random.default_rng(SEED)
    x = rng.normal(0, 0.1 / np.sqrt(DIM), (nu, DIM))
    y = rng.normal(0, 0.1 / np.sqrt(DIM), (ni, DIM))
    g = rng.normal(0, 0.1 / np.sqrt(DIM), (ni, DIM))
    bi = np.zeros(ni); cj = np.zeros(ni)
    M = sppmi(train, shift)
    nz = M > 0
    lam_u = REG * (n_u + W0 * ni)
    lam_i = REG * (seen.sum(0) + W0 * nu)
    eye = np.eye(DIM)
    for _ in range(SWEEPS):
        # Users: the plain iALS solve.
        gram = W0 * y.T @ y
        for u in range(nu):
            idx = np.nonzero(conf[u])[0]
            c, f = conf[u, idx], y[idx]
            a = gram + (f * (c - W0)[:, None]).T @ f + lam_u[u] * eye
            x[u] = np.linalg.solve(a, c @ f)
        # Items: the iALS solve plus MU times the co-occurrence rows against the contexts.
        gram = W0 * x.T @ x
        for i in range(ni):
            idx = np.nonzero(conf[:, i])[0]
            c, f = conf[idx, i], x[idx]
            a = gram + (f * (c - W0)[:, None]).T @ f + lam_i[i] * eye
            b = c @ f
            if mu > 0:
                j = np.nonzero(nz[i])[0]
                if len(j):
                    gj = g[j]
                    a = a + mu * gj.T @ gj
                    b = b + mu * (M[i, j] - bi[i] - cj[j]) @ gj
            y[i] = np.linalg.solve(a, b)
        if mu > 0:
            # Contexts, then the item and context biases of the co-occurrence fit.
            for jj in range(ni):
                i = np.nonzero(nz[:, jj])[0]
                if len(i) == 0:
                    continue
                yi = y[i]
                a = mu * yi.T @ yi + lam_i[jj] * eye
                g[jj] = np.linalg.solve(a, mu * (M[i, jj] - bi[i] - cj[jj]) @ yi)
            pred = y @ g.T
            r = np.where(nz, M - pred - cj[None, :], 0)
            cnt = np.maximum(nz.sum(1), 1)
            bi = r.sum(1) / cnt
            r = np.where(nz, M - pred - bi[:, None], 0)
            cj = r.sum(0) / np.maximum(nz.sum(0), 1)
    return x @ y.T

def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    mus = [float(v) for v in sys.argv[1].split(",")]
    shift = float(sys.argv[2])
    data = [load(d) for d in sys.argv[3:]]
    for mu in mus:
        t = time.time()
        res = [ndcg10(run(tr, mu, shift), tr, te) for tr, te in data]
        print(
            f"mu {mu} shift {shift}: " + " ".join(f"{r:.4f}" for r in res)
            + f"  mean {np.mean(res):.4f}  ({time.time() - t:.0f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
