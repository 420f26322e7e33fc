"""Seeded synthetic interactions whose item text carries the same latent topics as behaviour."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec.datasets._dataset import Dataset

# The benchmark sizes S, M, L (benchmarks/README.md): (n_users, n_items, n_interactions).
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "S": (1_000, 2_000, 100_000),
    "M": (100_000, 20_000, 5_000_000),
    "L": (1_000_000, 100_000, 50_000_000),
}

# One vocabulary per theme; topics beyond the list reuse themes with a numbered qualifier.
SYNTHETIC_THEMES: list[tuple[str, ...]] = [
    ("galaxy", "starship", "planet", "orbit", "astronaut"),
    ("castle", "dragon", "wizard", "kingdom", "sword"),
    ("detective", "murder", "clue", "suspect", "alibi"),
    ("kitchen", "recipe", "chef", "flavour", "bakery"),
    ("football", "stadium", "coach", "league", "goal"),
    ("guitar", "concert", "melody", "band", "album"),
    ("forest", "river", "mountain", "wildlife", "trail"),
    ("startup", "market", "investor", "profit", "merger"),
    ("romance", "wedding", "lover", "heartbreak", "kiss"),
    ("ghost", "haunting", "curse", "nightmare", "crypt"),
    ("robot", "algorithm", "circuit", "android", "laboratory"),
    ("pirate", "ocean", "treasure", "island", "ship"),
    ("cowboy", "ranch", "saloon", "sheriff", "frontier"),
    ("soldier", "battle", "trench", "general", "war"),
    ("painter", "gallery", "canvas", "sculpture", "museum"),
    ("school", "teacher", "exam", "classroom", "student"),
    ("hospital", "doctor", "surgery", "patient", "nurse"),
    ("garden", "flower", "orchard", "harvest", "seed"),
    ("comedian", "prank", "joke", "sitcom", "laughter"),
    ("politician", "election", "senate", "campaign", "scandal"),
]
_ADJECTIVES = (
    "bold", "quiet", "dark", "bright", "strange", "gentle", "wild", "lost", "golden", "hidden",
    "ancient", "modern", "restless", "silent", "broken", "brave", "curious", "distant", "final",
    "secret",
)  # fmt: skip
_MAX_EXPONENT = 10.0
_MAX_SIGMA = 10.0
# The fill loop gives up after this many draws in a row without a new (user, item) pair, or
# after _MAX_DRAWS draws per requested pair in all (slow but completing calls measured below
# 30k idle draws and 1.2k draws per pair).
_MAX_IDLE_DRAWS = 1_000_000
_MAX_DRAWS = 10_000


def synthetic(
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    n_topics: int = 20,
    topic_affinity: float = 0.8,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    with_text: bool = True,
    random_state: int | np.random.Generator | None = 0,
) -> Dataset:
    """Generate a seeded dataset with power-law popularity and topic-driven behaviour.

    Each item belongs to one of ``n_topics`` latent topics and has a popularity drawn from a
    Zipf law (``popularity ∝ rank**-popularity_exponent``). Each user has a favourite topic and
    a log-normal activity level. Each draw picks, with probability ``topic_affinity``, an item
    of the user's topic (by popularity) and otherwise any item (by popularity); a repeated
    (user, item) pair is dropped and drawn again. Ratings are 4-5 for on-topic and 1-3 for
    off-topic items, so ``relevance_threshold=4`` marks on-topic items. Item text is
    ``"<adjective> <topic noun> and the <topic noun> #<i>"`` made from the topic's vocabulary,
    so text models see the same topics. Timestamps are spread over 2020.

    Parameters
    ----------
    n_users, n_items, n_interactions : int
        Size; exactly ``n_interactions`` distinct (user, item) pairs are produced.
    n_topics : int
        Number of latent topics (``items["topic"]`` holds each item's label).
    topic_affinity : float in [0, 1]
        Probability that a draw falls in the user's topic. A topic holds few items, so
        on-topic draws repeat pairs more often and more of them are dropped: the realised
        share of on-topic interactions is lower than ``topic_affinity`` (about 0.5 at the
        default 0.8 for ``synthetic(500, 800, 20_000)``; 1.0 keeps every interaction on
        topic, and then each user has only the items of one topic to choose from).
    popularity_exponent : float in [0, 10]
        Zipf exponent of item popularity (about 1 in the protocol; 0 is uniform).
    activity_sigma : float in [0, 10]
        Sigma of the log-normal user activity (0: every user equally active).
    with_text : bool
        Generate ``items["text"]`` (skipping it saves time at the L size).
    random_state : None, int or numpy.random.Generator
        Seed; the same seed gives the same dataset.

    Raises
    ------
    ValueError
        For a parameter out of range, or when the parameters leave too few (user, item) pairs
        likely enough to place ``n_interactions`` distinct ones (e.g. ``topic_affinity=1``
        with small topics, or a very skewed popularity or activity at a high density).

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> ds = synthetic(100, 200, 2_000, random_state=0)
    >>> ds.n_interactions
    2000
    >>> ds.items["topic"].nunique() <= 20
    True
    """
    n_users = check.positive_int(n_users, "n_users")
    n_items = check.positive_int(n_items, "n_items")
    n_interactions = check.positive_int(n_interactions, "n_interactions")
    n_topics = check.positive_int(n_topics, "n_topics")
    if n_interactions > n_users * n_items // 2:
        raise ValueError(
            f"n_interactions ({n_interactions}) must be at most half of n_users * n_items "
            f"({n_users * n_items // 2}) to leave room for distinct pairs"
        )
    topic_affinity = check.number(topic_affinity, "topic_affinity", minimum=0, maximum=1)
    # Bounded so that rank**-exponent and the log-normal draws stay finite and non-zero.
    popularity_exponent = check.number(
        popularity_exponent, "popularity_exponent", minimum=0, maximum=_MAX_EXPONENT
    )
    activity_sigma = check.number(activity_sigma, "activity_sigma", minimum=0, maximum=_MAX_SIGMA)
    with_text = check.flag(with_text, "with_text")  # before the work, as every other argument
    rng = hyperparameters.generator(random_state)

    item_topic = rng.integers(0, n_topics, n_items)
    rank = rng.permutation(n_items) + 1
    popularity = rank.astype(np.float64) ** -popularity_exponent
    # Global CDF, and one CDF per topic laid side by side on [t, t + 1) (one searchsorted).
    global_cdf = np.cumsum(popularity / popularity.sum())
    by_topic = np.lexsort((np.arange(n_items), item_topic))
    topic_of_sorted = item_topic[by_topic]
    topic_mass = np.bincount(item_topic, weights=popularity, minlength=n_topics)
    within = popularity[by_topic] / topic_mass[topic_of_sorted]
    topic_cdf = np.cumsum(within)
    starts = np.searchsorted(topic_of_sorted, np.arange(n_topics))
    topic_cdf -= np.concatenate(([0.0], topic_cdf))[starts][topic_of_sorted]
    topic_cdf += topic_of_sorted
    present = np.bincount(item_topic, minlength=n_topics) > 0

    user_topic = rng.choice(np.flatnonzero(present), n_users)
    activity = rng.lognormal(0.0, activity_sigma, n_users)
    activity /= activity.sum()

    if topic_affinity == 1.0:  # each user can only reach the items of its topic
        feasible = int(np.bincount(item_topic, minlength=n_topics)[user_topic].sum())
        if n_interactions > feasible:
            raise ValueError(
                f"topic_affinity=1 keeps each user within its topic's items, which leaves "
                f"{feasible} distinct (user, item) pairs for n_interactions={n_interactions}; "
                "lower n_interactions or topic_affinity, or use fewer (larger) topics (n_topics)"
            )

    users_out = np.empty(0, dtype=np.int64)
    items_out = np.empty(0, dtype=np.int64)
    kept = np.empty(0, dtype=np.int64)  # the pairs so far as sorted keys user * n_items + item
    needed = n_interactions
    # Draws since the last new pair, and in all: parameters can make the rest (nearly)
    # unreachable, and the loop must then stop.
    idle_draws = total_draws = 0
    while needed > 0:
        draws = int(needed * 1.3) + 16
        u = rng.choice(n_users, draws, p=activity)
        on_topic = rng.random(draws) < topic_affinity
        x = rng.random(draws)
        i = np.empty(draws, dtype=np.int64)
        t_pos = np.searchsorted(topic_cdf, user_topic[u[on_topic]] + x[on_topic], side="right")
        i[on_topic] = by_topic[np.minimum(t_pos, n_items - 1)]
        g_pos = np.searchsorted(global_cdf, x[~on_topic], side="right")
        i[~on_topic] = np.minimum(g_pos, n_items - 1)
        # Each new pair's first draw, in draw order (so the subsample below stays random), after
        # the pairs kept before: only the new draws are sorted, then merged into the kept keys.
        keys, first = np.unique(u * n_items + i, return_index=True)
        fresh = ~_in_sorted(keys, kept)
        new, first = keys[fresh], np.sort(first[fresh])
        users_out = np.concatenate((users_out, u[first]))
        items_out = np.concatenate((items_out, i[first]))
        kept = np.sort(np.concatenate((kept, new)), kind="stable")  # two sorted runs: a merge
        remaining = n_interactions - len(users_out)
        idle_draws = idle_draws + draws if remaining >= needed else 0
        needed = remaining
        total_draws += draws
        stalled = idle_draws >= _MAX_IDLE_DRAWS
        if needed > 0 and (stalled or total_draws >= _MAX_DRAWS * n_interactions + 1_000_000):
            why = (
                f"the last {idle_draws:,} draws found no new pair"
                if stalled
                else f"{total_draws:,} draws found only {n_interactions - needed} distinct pairs"
            )
            raise ValueError(
                f"synthetic() cannot place {n_interactions} distinct (user, item) pairs with "
                f"these parameters: {why}; lower n_interactions, or make the draws less "
                "concentrated (lower topic_affinity, popularity_exponent or activity_sigma, or "
                "fewer topics)"
            )
    keep = np.sort(rng.choice(len(users_out), n_interactions, replace=False))
    u, i = users_out[keep], items_out[keep]
    order = np.lexsort((i, u))
    u, i = u[order], i[order]
    match = item_topic[i] == user_topic[u]
    rating = np.where(match, rng.integers(4, 6, len(u)), rng.integers(1, 4, len(u)))
    start = 1_577_836_800  # 2020-01-01 UTC
    timestamps = start + rng.integers(0, 366 * 86_400, len(u))

    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    m = sp.csr_array(
        (rating.astype(np.float32), i.astype(np.int32), indptr), shape=(n_users, n_items)
    )
    m.has_sorted_indices = True
    items: dict[str, Any] = {"topic": item_topic}
    if with_text:
        items["text"] = _item_text(item_topic, rng)
    users = pd.DataFrame({"topic": user_topic})
    return Dataset(m, timestamps=timestamps, items=pd.DataFrame(items), users=users)


def _in_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_keys`` (ascending)."""
    if sorted_keys.size == 0:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), sorted_keys.size - 1)
    return sorted_keys[at] == values


def synthetic_size(size: str, **kwargs: Any) -> Dataset:
    """The protocol's scale data: ``size`` is ``"S"``, ``"M"`` or ``"L"`` (see SYNTHETIC_SIZES).

    Examples
    --------
    >>> from semrec.datasets import synthetic_size
    >>> synthetic_size("S").n_users
    1000
    """
    if size not in SYNTHETIC_SIZES:
        raise ValueError(f"size must be one of {tuple(SYNTHETIC_SIZES)}, got {size!r}")
    return synthetic(*SYNTHETIC_SIZES[size], **kwargs)


def _item_text(item_topic: np.ndarray, rng: np.random.Generator) -> list[str]:
    n = len(item_topic)
    adjective = rng.integers(0, len(_ADJECTIVES), n)
    noun_a = rng.integers(0, 5, n)
    noun_b = (noun_a + 1 + rng.integers(0, 4, n)) % 5
    texts = []
    for idx in range(n):
        t = int(item_topic[idx])
        words = SYNTHETIC_THEMES[t % len(SYNTHETIC_THEMES)]
        qualifier = f" (series {t // len(SYNTHETIC_THEMES)})" if t >= len(SYNTHETIC_THEMES) else ""
        texts.append(
            f"{_ADJECTIVES[adjective[idx]]} {words[noun_a[idx]]} and the "
            f"{words[noun_b[idx]]}{qualifier} #{idx}"
        )
    return texts
