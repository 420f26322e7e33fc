"""Datasets: the `Dataset` container, MovieLens loaders and seeded synthetic data."""

from semrec.datasets._dataset import Dataset
from semrec.datasets._download import cache_dir
from semrec.datasets._embeddings import ItemEmbeddings
from semrec.datasets._movielens import movielens
from semrec.datasets._synthetic import SYNTHETIC_SIZES, SYNTHETIC_THEMES, synthetic, synthetic_size

__all__ = [
    "SYNTHETIC_SIZES",
    "SYNTHETIC_THEMES",
    "Dataset",
    "ItemEmbeddings",
    "cache_dir",
    "movielens",
    "synthetic",
    "synthetic_size",
]
