"""benchmarks/semantic.py's quality parts on another MovieLens release (issue 13).

ml-latest-small is not shipped with the tests and nothing may be downloaded: the test writes a
tiny data set in its format (half-star ratings, a rating of 2.5 that the content model centres
to 0, movies nobody rated, user tags) and runs the warm, cold, new-user and tuning parts on it
with hashed text vectors (no language model needed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semrec.datasets import synthetic

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "semantic.py"


def write_latest_small(folder: Path) -> None:
    ds = synthetic(120, 150, 4_000, n_topics=4, random_state=3)
    coo = ds.interactions.tocoo()
    stars = np.clip(np.round(coo.data * 2) / 2, 0.5, 5.0)  # half stars, 2.5 included
    stars[::9] = 2.5
    ratings = pd.DataFrame(
        {
            "userId": coo.row + 1,
            "movieId": coo.col + 1,
            "rating": stars,
            "timestamp": ds.timestamps,
        }
    )
    folder.mkdir()
    ratings.to_csv(folder / "ratings.csv", index=False)
    titles = [f"{text} ({1980 + i % 40})" for i, text in enumerate(ds.item_text)]
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, 153),  # two more movies than rated ones: nobody rated them
            "title": [*titles, "Unseen One (2001)", "Unseen Two (2002)"],
            "genres": ["Drama|Comedy", "(no genres listed)"] * 76,
        }
    )
    movies.to_csv(folder / "movies.csv", index=False)
    tags = pd.DataFrame(
        {
            "userId": [1, 2, 3, 1],
            "movieId": [1, 1, 2, 3],
            "tag": ["dark", "dark", "funny", "slow"],
            "timestamp": [1, 2, 3, 4],
        }
    )
    tags.to_csv(folder / "tags.csv", index=False)


@pytest.mark.slow
def test_quality_parts_run_on_half_star_latest_small(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    write_latest_small(folder)
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--parts",
            "warm,cold,new_users,tune",
            "--quick",
            "--movielens",
            "latest-small",
            "--data-path",
            str(folder),
            "--tags",
            "--embeddings",
            "hashed",
            "--tune-repeats",
            "1",
            "--threads",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "MovieLens latest-small (+ tags)" in out
    for part in ("Warm split", "Cold-item split", "New-user split", "identical tables: True"):
        assert part in out, out
    assert "no rating" in run.stderr  # the two unrated movies were announced
    for line in out.splitlines():
        if line.startswith("| UserKNN"):
            break
    else:
        raise AssertionError("UserKNN missing from the tables:\n" + out)
