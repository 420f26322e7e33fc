"""``semrec demo``: the main job on a seeded synthetic catalogue (offline, no files needed)."""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

import semrec
from semrec.cli._args import positive

TOPICS = (
    "space opera",
    "film noir",
    "romantic comedy",
    "nature documentary",
    "heist thriller",
    "animated family",
    "war drama",
    "cyberpunk",
    "western",
    "courtroom drama",
    "sports story",
    "musical",
    "slasher horror",
    "costume drama",
    "buddy cop",
    "time travel",
    "spy caper",
    "coming of age",
    "disaster epic",
    "mockumentary",
)


def synthetic_catalogue(
    n_items: int, n_users: int, dim: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Topical item embeddings and user profiles: each item and user leans to one topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(TOPICS), dim)).astype(np.float32)
    item_topic = rng.integers(len(TOPICS), size=n_items)
    items = centres[item_topic] + 1.5 * rng.standard_normal((n_items, dim), dtype=np.float32)
    user_topic = rng.integers(len(TOPICS), size=n_users)
    users = centres[user_topic] + 1.0 * rng.standard_normal((n_users, dim), dtype=np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    return items, item_topic, users, user_topic


def _numpy_topk(q: np.ndarray, x: np.ndarray, k: int, seen: sp.csr_array) -> np.ndarray:
    """The plain NumPy way (chunked product + argpartition), for the timing comparison."""
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], 1024):
        scores = q[start : start + 1024] @ x.T
        block = seen[start : start + 1024].tocoo()
        scores[block.row, block.col] = -np.inf
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        out[start : start + 1024] = np.take_along_axis(part, order, axis=1)
    return out


def demo(args: argparse.Namespace) -> int:
    """Similarity search on a synthetic catalogue: result table and timing."""
    if args.threads is not None:
        semrec.set_num_threads(args.threads)
    items, item_topic, users, user_topic = synthetic_catalogue(
        args.items, args.users, args.dim, args.seed
    )
    rng = np.random.default_rng(args.seed + 1)
    seen = sp.random_array(
        (args.users, args.items),
        density=min(1.0, 20 / args.items),
        format="csr",
        dtype=np.float32,
        rng=rng,
    )
    print(
        f"semrec {semrec.__version__} demo: {args.users:,} users x {args.items:,} items, "
        f"dim {args.dim}, k={args.k}, {semrec.get_num_threads()} threads, "
        f"kernel {semrec._native.core.isa}"
    )

    t0 = time.perf_counter()
    ids, scores = semrec.topk(users, items, args.k, metric="dot", exclude=seen)
    t_semrec = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference = _numpy_topk(users, items, args.k, seen)
    t_numpy = time.perf_counter() - t0

    print("\nTop recommendations for the first users (item id: topic, score)")
    print(f"{'user':>5}  {'likes':<18} recommendations")
    for u in range(min(args.show, args.users)):
        recs = ", ".join(
            f"{i}: {TOPICS[item_topic[i]]} {s:.2f}" for i, s in zip(ids[u], scores[u], strict=True)
        )
        print(f"{u:>5}  {TOPICS[user_topic[u]]:<18} {recs}")

    on_topic = float((item_topic[ids] == user_topic[:, None]).mean())
    agree = float((np.sort(ids, axis=1) == np.sort(reference, axis=1)).mean())
    print(f"\nrecommendations on the user's topic: {on_topic:.1%}")
    print(f"agreement with the NumPy reference:   {agree:.1%}")
    print(f"\n{'method':<26}{'seconds':>10}{'queries/s':>14}")
    print(f"{'semrec.topk':<26}{t_semrec:>10.3f}{args.users / t_semrec:>14,.0f}")
    print(f"{'numpy @ + argpartition':<26}{t_numpy:>10.3f}{args.users / t_numpy:>14,.0f}")
    print(f"speed-up: {t_numpy / t_semrec:.1f}x")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo on a seeded synthetic catalogue",
        description="Top-k search for every user of a seeded synthetic catalogue, excluding "
        "items they have seen; prints the results and the time against plain NumPy.",
    )
    p.add_argument("--items", type=positive, default=100_000, help="catalogue size (100000)")
    p.add_argument("--users", type=positive, default=2_000, help="number of users (2000)")
    p.add_argument("--dim", type=positive, default=128, help="embedding dimension (128)")
    p.add_argument("--k", type=positive, default=5, help="recommendations per user (5)")
    p.add_argument("--show", type=int, default=5, help="users to print (5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.set_defaults(run=demo)
