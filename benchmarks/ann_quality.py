"""Quality with an approximate index: the MovieLens warm-split table, exact vs approximate search.

How to run (from the project root, in the project's virtualenv; faiss-cpu is the ``bench`` extra):

    python benchmarks/ann_quality.py              # ../shared/datasets/ml-100k, MiniLM embeddings

PROTOCOL.md's warm split of MovieLens-100k (last 20% of each user's interactions by time go to
test; relevant = rating >= 4; seen items excluded). Each dot-product model is fitted once and
evaluated with ``recommend`` searching its items exactly (``use_index("exact")``, the default)
and through each approximate index (``use_index("pq")`` at its default ``rerank`` and at a
shallow one, ``use_index("hnsw")`` at its defaults); the table gives NDCG@10 and Recall@10 of
each and the share of top-10 lists equal to the exact ones. With 1,682 items a default PQ
search re-scores most of the catalogue; the shallow settings show what approximation costs.
Models: ``ContentRecommender`` over the item text's MiniLM embeddings and ``ALS`` (64 factors).
``semrec.Hybrid`` blends every member's scores of every item, so no index enters its lists.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _bench  # noqa: F401  (pins threads before numpy is imported)
import numpy as np

import semrec
from semrec import split

DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "datasets"
SEARCHES = {
    "exact": ("exact", {}),
    "pq (default: rerank 1000)": ("pq", {}),
    "pq rerank=100": ("pq", {"rerank": 100}),
    "pq m=48 rerank=30": ("pq", {"m": 48, "rerank": 30}),
    "hnsw (default)": ("hnsw", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", default=str(DATA / "ml-100k"))
    args = parser.parse_args()
    data = semrec.datasets.movielens("100k", path=args.data_path, show_progress=False)
    emb = semrec.TextEncoder().encode_items(data)
    train, test = split.last_fraction(data)
    content = semrec.ContentRecommender(emb, show_progress=False).fit(train)
    als = semrec.ALS(64, random_state=0, show_progress=False).fit(train.interactions)
    models = {"content": content, "als": als}
    users = np.arange(data.n_users)
    print(f"Quality on MovieLens-100k, warm split ({data.n_items} items); top-10, seen excluded")
    print("| model | search | NDCG@10 | Recall@10 | lists equal to exact |")
    print("|---|---|---:|---:|---:|")
    for name, model in models.items():
        exact_lists = None
        for label, (kind, params) in SEARCHES.items():
            model.use_index(kind, **params)
            table = semrec.evaluate(model, train, test, k=10, metrics=["ndcg", "recall"])
            lists = model.recommend(users, k=10)[0]
            exact_lists = lists if exact_lists is None else exact_lists
            same = np.mean(np.all(lists == exact_lists, axis=1))
            ndcg, rec = (float(table.loc[10, m]) for m in ("ndcg", "recall"))
            print(f"| {name} | {label} | {ndcg:.4f} | {rec:.4f} | {same:.3f} |", flush=True)
        model.use_index("exact")


if __name__ == "__main__":
    main()
