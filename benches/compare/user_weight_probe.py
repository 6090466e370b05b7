#!/usr/bin/env python3
"""Probe: does weighing each user's loss by activity help iALS on P2, every rating a positive?

Usage: python3 user_weight_probe.py BETA[,BETA..] SPLIT_DIR [SPLIT_DIR..]   (needs numpy)
Each SPLIT_DIR holds train.tsv/test.tsv (user, item, rating, ...; header line), and items.tsv
(the catalogue, so every item is ranked) as `lshrec data split` writes them.

The metric weighs every user equally, the iALS loss every rating: heavy raters shape the item
vectors most. Here user u's whole loss is scaled by s_u = (n_u / mean n)^-BETA (normalised to
mean 1), which changes only the item solves (the user solves keep their argmin):

    item i:  (w0 Σ_u s_u x_u x_uᵀ + Σ_{u∈N(i)} s_u (c_ui − w0) x_u x_uᵀ + λ_i I) y_i
                 = Σ_{u∈N(i)} s_u c_ui x_u,     λ_i = λ (Σ_{u∈N(i)} s_u + w0 Σ_u s_u)

with lshrec's every-rating defaults otherwise (128 factors, λ .02, w0 .7, c = 1 + .35·rating,
ν = 1), exact solves, 15 sweeps. BETA 0 is plain iALS. Prints NDCG@10 (full ranking, training
items excluded) per split and the mean.

Measured (README, "Not done yet"): on nine validation splits of the seed-42 training part, BETA
.5 beat 0 on every one (mean .2040 against .2013 on three per-user:0.1 splits, .2818 against
.2795 on six per-user:0.2 ones; BETA .75 and 1 fell back, −.25 was lower), but on test parts it
did not follow: .4498 against .4537 on seed 42, .4575 against .4584 over seeds 1–5. Not kept.
"""
import sys

import numpy as np

from softmax_probe import ndcg10  # the same metric, from the probe beside this one

DIM, REG, W0, ALPHA, SWEEPS, SEED = 128, 0.02, 0.7, 0.35, 15, 0


def load(split):
    items = {}
    with open(f"{split}/items.tsv") as f:
        next(f)
        for line in f:
            items.setdefault(line.split("\t")[0], len(items))
    users, parts = {}, []
    for name in ("train", "test"):
        rows = []
        with open(f"{split}/{name}.tsv") as f:
            next(f)
            for line in f:
                u, i, r = line.rstrip("\n").split("\t")[:3]
                rows.append((users.setdefault(u, len(users)), items[i], float(r)))
        parts.append(rows)
    train = np.zeros((len(users), len(items)))
    test = np.zeros((len(users), len(items)), bool)
    for u, i, r in parts[0]:
        train[u, i] = r
    for u, i, _ in parts[1]:
        test[u, i] = True
    return train, test


def solve(fixed, conf, col_weight, lam):
    """Each row r of `conf` (0 where unobserved) against the fixed factors, columns weighted."""
    gram = W0 * (fixed * col_weight[:, None]).T @ fixed
    a = np.broadcast_to(gram, (conf.shape[0], DIM, DIM)).copy()
    b = np.zeros((conf.shape[0], DIM))
    for r in range(conf.shape[0]):
        idx = np.nonzero(conf[r])[0]
        c, w, f = conf[r, idx], col_weight[idx], fixed[idx]
        a[r] += (f * ((c - W0) * w)[:, None]).T @ f
        b[r] = (c * w) @ f
    a += lam[:, None, None] * np.eye(DIM)
    return np.linalg.solve(a, b[:, :, None])[:, :, 0]


def ials(train, beta):
    nu, ni = train.shape
    seen = train > 0
    conf = np.where(seen, 1 + ALPHA * train, 0.0)
    n_u = seen.sum(1).astype(np.float64)
    s = np.maximum(n_u, 1) ** -beta
    s *= nu / s.sum()
    rng = np.random.default_rng(SEED)
    x = rng.normal(0, 0.1 / np.sqrt(DIM), (nu, DIM))
    y = rng.normal(0, 0.1 / np.sqrt(DIM), (ni, DIM))
    lam_u = REG * (n_u + W0 * ni)
    lam_i = REG * ((seen * s[:, None]).sum(0) + W0 * s.sum())
    for _ in range(SWEEPS):
        x = solve(y, conf, np.ones(ni), lam_u)
        y = solve(x, conf.T, s, lam_i)
    return x @ y.T


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    betas = [float(b) for b in sys.argv[1].split(",")]
    data = [load(d) for d in sys.argv[2:]]
    for beta in betas:
        res = [ndcg10(ials(train, beta), train, test) for train, test in data]
        print(f"beta {beta}: " + " ".join(f"{r:.4f}" for r in res) + f"  mean {np.mean(res):.4f}")


if __name__ == "__main__":
    main()
