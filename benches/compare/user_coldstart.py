#!/usr/bin/env python3
"""User cold start on MovieLens-100K: fold-in from N liked movies, with or without demographics.

Usage: python3 user_coldstart.py SEED [--data data/ml-100k] [--lshrec target/release/lshrec]
                                 [--work user-coldstart/] [--no-demographics] [--n 0,1,3,5,10]
(needs numpy; DATA is the RecBole atomic layout `data/fetch-movielens.sh 100k` writes).

Holds out 94 users with at least 15 positives (ratings >= 4), drawn with SEED, writes the other
users' ratings (and the side files) to WORK/sSEED, and trains `lshrec train --model ials
--min-rating 4` there. For each held-out user it reveals N of their positives (a fixed shuffle
per user) to `lshrec query --liked ... --exact` (with their age, gender and occupation unless
--no-demographics; N = 0 uses the demographics alone) and scores NDCG@10 over all items against
their other positives, beside the most popular movies of the training part (the revealed ones
excluded).
"""
import argparse
import json
import os
import shutil
import subprocess

import numpy as np

HELD_OUT = 94
MIN_POSITIVES = 15


def ndcg10(rec, test):
    disc = 1 / np.log2(np.arange(2, 12))
    gain = sum(disc[k] for k, x in enumerate(rec[:10]) if x in test)
    return gain / disc[: min(len(test), 10)].sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seed", type=int)
    ap.add_argument("--data", default="data/ml-100k")
    ap.add_argument("--lshrec", default="target/release/lshrec")
    ap.add_argument("--work", default="user-coldstart")
    ap.add_argument("--no-demographics", action="store_true")
    ap.add_argument("--n", default="0,1,3,5,10")
    a = ap.parse_args()
    inter = os.path.join(a.data, "ml-100k.inter")
    with open(inter) as f:
        header = f.readline()
        ratings = [tuple(int(float(x)) for x in line.split("\t")[:4]) for line in f if line.strip()]
    pos = {}
    for u, i, r, _ in ratings:
        if r >= 4:
            pos.setdefault(u, []).append(i)
    eligible = sorted(u for u in pos if len(pos[u]) >= MIN_POSITIVES)
    rng = np.random.default_rng(a.seed)
    cold = set(rng.choice(eligible, size=HELD_OUT, replace=False).tolist())

    data = os.path.join(a.work, f"s{a.seed}")
    os.makedirs(data, exist_ok=True)
    for name in os.listdir(a.data):
        path = os.path.join(a.data, name)
        if name != "ml-100k.inter" and os.path.isfile(path):
            shutil.copy(path, data)
    with open(os.path.join(data, "ml-100k.inter"), "w") as f:
        f.write(header)
        for u, i, r, t in ratings:
            if u not in cold:
                f.write(f"{u}\t{i}\t{r}\t{t}\n")
    model = os.path.join(a.work, f"m{a.seed}")
    subprocess.run(
        [a.lshrec, "train", "--data", data, "--model", "ials", "--min-rating", "4", "--out", model, "-q"],
        check=True,
    )

    demo = {}
    with open(os.path.join(a.data, "ml-100k.user"), encoding="latin-1") as f:
        f.readline()
        for line in f:
            uid, age, gender, occupation = line.rstrip("\n").split("\t")[:4]
            demo[int(uid)] = (age, gender, occupation)
    counts = np.bincount([i for u in pos if u not in cold for i in pos[u]])
    popular = [int(i) for i in np.argsort(-counts, kind="stable")]

    for n in [int(x) for x in a.n.split(",")]:
        if n == 0 and a.no_demographics:
            continue
        ours, pop = [], []
        for u in sorted(cold):
            p = list(pos[u])
            np.random.default_rng(a.seed * 1000 + u).shuffle(p)
            liked, test = p[:n], set(p[n:])
            cmd = [a.lshrec, "query", "--model", model, "--k", "10", "--json", "--exact"]
            if liked:
                cmd += ["--liked", ",".join(map(str, liked))]
            if n == 0 or not a.no_demographics:
                age, gender, occupation = demo[u]
                cmd += ["--age", age, "--gender", gender, "--occupation", occupation]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rec = [int(x["item"]) for x in json.loads(out)["recommendations"]]
            ours.append(ndcg10(rec, test))
            pop.append(ndcg10([i for i in popular if i not in liked][:10], test))
        what = "liked only" if a.no_demographics else "liked + demographics"
        print(f"seed {a.seed}  N {n:2}  {what}: NDCG@10 {np.mean(ours):.4f}  most popular: {np.mean(pop):.4f}", flush=True)


if __name__ == "__main__":
    main()
