"""The sample user's part of ``semrec demo``: history and explained recommendations, a text
query, and a real-time update, each as the printed text and a section of the HTML report."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from semrec.cli import report
from semrec.datasets import SYNTHETIC_THEMES, Dataset

ML_QUERY = "space adventure with robots"


# -- the sample user --------------------------------------------------------------------------


def short(text: Any, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def sample_user(train: Dataset, test: Dataset) -> int:
    """The user with the shortest history of at least 8 train items among those with a
    relevant test item (ties: the lowest index)."""
    n_train = np.diff(train.interactions.indptr)
    t = test.interactions
    relevant = np.zeros(train.n_users, dtype=bool)
    relevant[np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))[t.data >= 4]] = True
    candidates = np.flatnonzero(relevant & (n_train >= 8))
    if candidates.size == 0:
        candidates = np.flatnonzero(n_train > 0)
    return int(candidates[np.argmin(n_train[candidates])])


def because(model: Any, user: int, item: int, names: np.ndarray) -> str:
    why = model.explain(user, item, k=2)
    parts = [
        f"{short(names[i], 40)} ({s:.0%})"
        for i, s in zip(why["item"], why["share"], strict=True)
        if s > 0
    ]
    return "because you liked " + ", ".join(parts) if parts else "(no positive contribution)"


def rec_lines(model: Any, user: int, names: np.ndarray, labels: np.ndarray, k: int = 5) -> list:
    """(item, printed line, report entry) for the user's top ``k``."""
    ids, scores = model.recommend(user, k=k)
    out = []
    for i, s in zip(ids, scores, strict=True):
        if i < 0:
            continue
        line = f"{short(names[i], 50)} [{labels[i]}] {s:.3f}"
        out.append((int(i), line, report.Item(str(names[i]), str(labels[i]), float(s))))
    return out


def first_rank(model: Any, user: int, labels: np.ndarray, label: Any) -> int:
    """1-based rank of the user's best unseen item with ``label`` (0 if none)."""
    ids = model.recommend(user, k=labels.size)[0]
    ids = ids[ids >= 0]
    hits = np.flatnonzero(labels[ids] == label)
    return int(hits[0]) + 1 if hits.size else 0


def sample_part(
    models: dict[str, Any],
    train: Dataset,
    test: Dataset,
    u: int,
    names: np.ndarray,
    labels: np.ndarray,
) -> tuple[str, report.Section, list[int]]:
    """The sample user's history and explained recommendations: printed text, report section,
    and the content model's recommended items (marked on the embedding map)."""
    seen = train.interactions
    hist = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
    ratings = seen.data[seen.indptr[u] : seen.indptr[u + 1]]
    order = np.argsort(-ratings, kind="stable")[:8]
    raw = train.user_ids[u]  # the data's own id (u is the dataset's index)
    lines = [f"Sample user {raw} ({hist.size} items in train), highest rated first:"]
    lines += [f"  {ratings[j]:g}  {short(names[hist[j]])} [{labels[hist[j]]}]" for j in order]
    history = [
        report.Item(str(names[hist[j]]), str(labels[hist[j]]), why=f"rated {ratings[j]:g}")
        for j in order
    ]
    blocks: list[Any] = [
        report.Items(history, f"History: {hist.size} items, highest rated first (8 shown)")
    ]
    recommended: list[int] = []
    for title, name in (("Content", "content"), ("Hybrid", "hybrid")):
        lines.append(f"\n{title} recommendations, explained:")
        entries = []
        for i, line, entry in rec_lines(models[name], u, names, labels):
            why = because(models[name], u, i, names)
            lines.append(f"  {line}\n      {why}")
            entry.why = why
            entries.append(entry)
            if name == "content":
                recommended.append(i)
        blocks.append(report.Items(entries, f"{title} recommendations, explained"))
    return "\n".join(lines), report.Section(f"Sample user {raw}", blocks), recommended


def query_part(
    content: Any,
    args: argparse.Namespace,
    train: Dataset,
    u: int,
    names: np.ndarray,
    labels: np.ndarray,
) -> tuple[str, report.Section, np.ndarray]:
    """A text query answered by the content model (on synthetic data: a topic new to ``u``)."""
    hist = train.interactions[[u]].indices
    if args.dataset == "synthetic":
        counts = pd.Series(labels[hist]).value_counts()
        topic = next(
            (t for t in SYNTHETIC_THEMES if t[0] not in counts.index and t[0] in set(labels)),
            SYNTHETIC_THEMES[0],
        )
        query = f"stories of {topic[1]}s, {topic[4]}s and {topic[0]}s"
    else:
        query = ML_QUERY
    ids, scores = content.recommend_text(query, k=5)
    lines = [f'Text query: "{query}"']
    lines += [
        f"  {short(names[i], 50)} [{labels[i]}] {s:.3f}" for i, s in zip(ids, scores, strict=True)
    ]
    items = [
        report.Item(str(names[i]), str(labels[i]), float(s))
        for i, s in zip(ids, scores, strict=True)
    ]
    section = report.Section("Text query", [report.Items(items, f'"{query}" (a new user)')])
    return "\n".join(lines), section, ids


def update_part(
    models: dict[str, Any],
    train: Dataset,
    u: int,
    ids: np.ndarray,
    names: np.ndarray,
    labels: np.ndarray,
) -> tuple[str, report.Section]:
    """The user clicks the query's best items (a topic new to them, where there is one)."""
    raw = train.user_ids[u]  # the data's own id, as printed
    user_labels = set(labels[train.interactions[[u]].indices])
    fresh = [int(i) for i in ids if labels[i] not in user_labels]
    topic = labels[fresh[0] if fresh else int(ids[0])]
    clicks = [int(i) for i in ids if labels[i] == topic][:3]
    novelty = "new to them" if fresh else "already in their history"
    lists = {"content": models["content"], "ALS": models["ALS"]}
    old = {n: model.recommend(u, k=10)[0] for n, model in lists.items()}
    first_before = {n: first_rank(model, u, labels, topic) for n, model in lists.items()}
    t0 = time.perf_counter()
    for i in clicks:
        for model in lists.values():
            model.update(u, i, 5.0)
    update_ms = (time.perf_counter() - t0) * 1e3
    head = (
        f"Real-time update: user {raw} clicks {len(clicks)} [{topic}] item(s) ({novelty}: "
        f"{', '.join(short(names[i], 40) for i in clicks)}); ContentRecommender.update + "
        f"ALS.update took {update_ms:.1f} ms in all"
    )
    lines, rows, blocks = [head], [], []
    for model_name, model in lists.items():
        now = model.recommend(u, k=10)[0]
        on_before = int(np.sum(labels[old[model_name]] == topic))
        on_after = int(np.sum(labels[now] == topic))
        moved = len(set(now.tolist()) - set(old[model_name].tolist()))
        first_after = first_rank(model, u, labels, topic)
        lines.append(
            f"  {model_name}: [{topic}] items in the top 10: {on_before} -> {on_after}, best "
            f"[{topic}] item at rank {first_before[model_name]} -> {first_after} "
            f"({moved} of 10 changed); top 5 now:"
        )
        top = rec_lines(model, u, names, labels)
        lines += [f"    {line}" for _, line, _ in top]
        rows.append([model_name, on_before, on_after, first_before[model_name], first_after, moved])
        blocks.append(report.Items([e for _, _, e in top], f"{model_name}: top 5 after the clicks"))
    table = report.Table(
        ["model", f"[{topic}] in top 10 before", "after", "best rank before", "after",
         "changed of 10"],
        rows,
        caption=f"User {raw} clicked {len(clicks)} [{topic}] item(s), {novelty}; both updates "
        f"took {update_ms:.1f} ms in all.",
    )  # fmt: skip
    return "\n".join(lines), report.Section("Real-time update", [table, *blocks])
