"""MovieLens loaders: parse the official files from a folder, or download the official archive.

Item text (as the benchmarks use it): ``"<title> — <genres>"``, plus the first sentence of the
Wikipedia summary from ``movie_wiki.csv`` when that file is present and the title matches.
"""

from __future__ import annotations

import csv
import logging
import re
import tempfile
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from semrec.datasets._dataset import Dataset
from semrec.datasets._download import cache_dir, extract, fetch, fetch_text
from semrec.errors import FormatError

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
# variant -> (archive name, folder inside it, file that proves the folder is complete)
VARIANTS = {
    "100k": ("ml-100k.zip", "ml-100k", "u.data"),
    "1m": ("ml-1m.zip", "ml-1m", "ratings.dat"),
    "latest-small": ("ml-latest-small.zip", "ml-latest-small", "ratings.csv"),
}
WIKI_FILE = "movie_wiki.csv"
# The ratings, movie and user files of each variant (latest-small has no user file).
FILES = {
    "100k": ("u.data", "u.item", "u.user"),
    "1m": ("ratings.dat", "movies.dat", "users.dat"),
    "latest-small": ("ratings.csv", "movies.csv", None),
}
# Tags appended to an item's text with tags=True.
TAGS_PER_ITEM = 5

logger = logging.getLogger("semrec")


def movielens(
    variant: str = "100k",
    path: str | PathLike[str] | None = None,
    download: bool = False,
    *,
    base_url: str = BASE_URL,
    show_progress: bool = True,
    drop_unrated: bool | None = None,
    tags: bool | int = False,
) -> Dataset:
    """Load a MovieLens dataset (ratings as weights, timestamps, movie text and metadata).

    ============  ======  =======  =========  ==========================================
    variant       users   movies   ratings    notes
    ============  ======  =======  =========  ==========================================
    100k          943     1,682    100,000    ratings 1-5; every movie rated
    1m            6,040   3,883    1,000,209  ratings 1-5; 3,706 movies rated
    latest-small  610     9,742    100,836    half stars 0.5-5; 9,724 movies rated;
                                              3,683 user tags (``tags=True``)
    ============  ======  =======  =========  ==========================================

    (Counts of the official archives; "movies" counts every movie of the movie file.)

    Parameters
    ----------
    variant : {'100k', '1m', 'latest-small'}
        Which release.
    path : path, optional
        Folder holding the official files (e.g. ``ml-100k/`` with ``u.data``, ``u.item``).
        Default: ``<cache>/ml-100k`` etc., where ``<cache>`` is ``$SEMREC_DATA`` or
        ``~/.cache/semrec``.
    download : bool
        When the files are missing, fetch the official archive from GroupLens into the cache
        folder, check it against the MD5 published beside it, and unzip it into ``path`` (or
        the cache), which must be new or empty: nothing else on disk is written or moved.
    base_url : str
        Where the archives live (a mirror, or a ``file://`` URL).
    show_progress : bool
        Show a progress bar while downloading.
    drop_unrated : bool, optional
        Movies of the movie file that nobody rated (1m and latest-small list some) join the
        catalogue as items without interactions. ``True`` drops them, ``False`` keeps them;
        ``None`` (default) keeps them and logs a warning that says how many there are.
    tags : bool or int, default False
        latest-small only: append the movie's most frequent user tags (from ``tags.csv``) to
        its text, ``"<text>. Tags: a, b, c"``; ``True`` appends up to 5, an int that many.
        Ties between tags go to the one used first (by time).

    Returns
    -------
    Dataset
        ``items`` has ``title``, ``genres`` (``|``-separated) and ``text`` columns; ``users``
        has the demographic columns where the release provides them.

    Raises
    ------
    FileNotFoundError
        The files are missing (and ``download`` is False).
    semrec.FormatError
        A file is damaged: a line with the wrong number of fields, a repeated rating, movie or
        user, or a rating of a movie (by a user) that the movie (user) file does not list. The
        message names the file. An unusable ``movie_wiki.csv`` (optional) is skipped with a
        logged warning instead.

    Examples
    --------
    >>> from semrec.datasets import movielens
    >>> ml = movielens("100k", path="../shared/datasets/ml-100k")  # doctest: +SKIP
    >>> ml.n_users, ml.n_items, ml.n_interactions  # doctest: +SKIP
    (943, 1682, 100000)
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    n_tags = _tag_count(tags, variant)
    _, folder, marker = VARIANTS[variant]
    if path is not None and not isinstance(path, str | PathLike):
        raise TypeError(
            f"path must be a folder path (str or os.PathLike), got {type(path).__name__}"
        )
    root = Path(path) if path is not None else cache_dir() / folder
    if not (root / marker).exists():
        if not download:
            raise FileNotFoundError(
                f"MovieLens {variant} not found at {root} (no {marker}); pass path= to the "
                "folder holding the official files, or download=True to fetch them"
            )
        _download(variant, root, base_url=base_url, show_progress=show_progress)
    parse = {"100k": _parse_100k, "1m": _parse_1m, "latest-small": _parse_latest}[variant]
    try:
        ratings, movies, users = parse(root)
        movies["text"] = _item_text(movies, root / WIKI_FILE)
        if n_tags:
            movies["text"] = _with_tags(movies, _read_tags(root / "tags.csv"), n_tags)
    except FormatError:
        raise  # already names the file
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, IndexError) as exc:
        raise FormatError(f"MovieLens {variant} files in {root} are malformed: {exc}") from exc
    _check_known_ids(ratings, movies, users, root, FILES[variant])
    rated = movies["item_id"].isin(ratings["item_id"])
    if not rated.all():
        unrated = int((~rated).sum())
        if drop_unrated:
            movies = movies[rated].reset_index(drop=True)
        elif drop_unrated is None:
            logger.warning(
                "MovieLens %s: %d of %d movies have no rating; they are items without "
                "interactions (pass drop_unrated=True to drop them, False to keep them quietly)",
                variant,
                unrated,
                len(movies),
            )
    return Dataset.from_pandas(
        ratings,
        "user_id",
        "item_id",
        weight_col="rating",
        time_col="timestamp",
        items=movies,
        users=users,
    )


def _download(variant: str, root: Path, *, base_url: str, show_progress: bool) -> None:
    archive, folder, marker = VARIANTS[variant]
    url = base_url.rstrip("/") + "/" + archive
    md5_text = fetch_text(url + ".md5")
    match = re.search(r"\b[0-9a-fA-F]{32}\b", md5_text)
    if match is None:
        raise FormatError(f"{url}.md5 does not hold an MD5 checksum")
    if root.is_dir() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} is not empty but holds no {marker}: download=True unpacks MovieLens into a "
            "new or empty folder only; pass path= to the folder with the official files, or to "
            "a new one"
        )
    dest = cache_dir() / archive
    fetch(url, dest, md5=match.group(0), show_progress=show_progress)
    root.parent.mkdir(parents=True, exist_ok=True)
    # Unpacked beside root in a folder of its own, then moved: a neighbouring folder that
    # happens to bear the archive's folder name (a user's edited copy) is never touched.
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".semrec-unpack-") as unpacked:
        extract(dest, Path(unpacked))
        if not (Path(unpacked) / folder / marker).exists():
            raise FormatError(f"{archive} did not contain {folder}/{marker}")
        if root.exists():
            root.rmdir()  # empty (checked above)
        (Path(unpacked) / folder).rename(root)


def _read(
    path: Path, *, sep: str, names: list[str], encoding: str = "utf-8", shown_sep: str = ""
) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"missing MovieLens file {path}")
    _check_fields(path, sep, names, shown_sep or sep)
    try:
        # index_col=False: a surplus field must not become the index; the files never quote.
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            names=names,
            index_col=False,
            quoting=csv.QUOTE_NONE,
            encoding=encoding,
        )
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path} is not {encoding} text: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FormatError(f"{path} is not a readable MovieLens file: {exc}") from exc
    if frame.shape[1] != len(names) or frame.isna().all(axis=1).any():
        raise FormatError(f"{path}: expected {len(names)} columns per line")
    return frame


def _check_fields(path: Path, sep: str, names: list[str], shown_sep: str) -> None:
    """Every non-blank line holds one field per name: pandas would pad a short line with NaN
    silently, and report a long one without the file's name."""
    raw = path.read_bytes()
    if not raw.strip():
        raise FormatError(f"{path} is empty")
    if b"\x00" in raw:
        raise FormatError(f"{path} holds NUL bytes: it is not a plain text file (UTF-16?)")
    fields = [n for n in names if not n.startswith("_")]  # '::' files: no empty fields
    shown = f" ({', '.join(fields)})" if len(fields) <= 6 else ""
    for number, line in enumerate(raw.splitlines(), 1):
        found = line.count(sep.encode()) + 1
        if found != len(names) and line.strip():
            found = len(line.split(shown_sep.encode()))
            raise FormatError(
                f"{path}, line {number}: expected {len(fields)} {shown_sep!r}-separated "
                f"fields{shown}, found {found}"
            )


def _check_ratings(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if frame[["user_id", "item_id", "rating", "timestamp"]].isna().any().any():
        raise FormatError(f"{path}: some lines lack a user, item, rating or timestamp")
    for col in ("user_id", "item_id", "timestamp"):
        if not pd.api.types.is_integer_dtype(frame[col]):
            raise FormatError(f"{path}: column {col} must be integer, got {frame[col].dtype}")
    if not pd.api.types.is_numeric_dtype(frame["rating"]):
        raise FormatError(f"{path}: ratings must be numbers, got {frame['rating'].dtype}")
    repeated = frame.duplicated(["user_id", "item_id"])
    if repeated.any():
        row = frame[repeated].iloc[0]
        raise FormatError(
            f"{path}: user {row['user_id']} rates item {row['item_id']} more than once "
            f"({int(repeated.sum())} repeated user-item pairs); an official MovieLens file "
            "holds each pair once, so this copy is damaged"
        )
    return frame


def _unique_ids(frame: pd.DataFrame, col: str, path: Path) -> pd.DataFrame:
    """Movie and user files list each id once."""
    repeated = frame[col].duplicated()
    if repeated.any():
        raise FormatError(
            f"{path}: {col} {frame[col][repeated].iloc[0]} is listed more than once "
            f"({int(repeated.sum())} repeated ids); an official MovieLens file lists each once"
        )
    return frame


def _check_known_ids(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    users: pd.DataFrame | None,
    root: Path,
    files: tuple[str, str, str | None],
) -> None:
    """Every rated movie and rating user is listed in the movie and user files."""
    tables = [("item_id", "of movies", movies, files[1]), ("user_id", "by users", users, files[2])]
    for col, what, table, name in tables:
        if table is None or name is None:
            continue
        unknown = ~ratings[col].isin(table[col])
        if unknown.any():
            raise FormatError(
                f"{root / files[0]} holds {int(unknown.sum())} ratings {what} that "
                f"{root / name} does not list (e.g. {col} {ratings[col][unknown].iloc[0]})"
            )


def _parse_100k(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cols = ["user_id", "item_id", "rating", "timestamp"]
    ratings = _check_ratings(_read(root / "u.data", sep="\t", names=cols), root / "u.data")
    genres = _read(root / "u.genre", sep="|", names=["genre", "index"]).dropna()
    if genres.empty:
        raise FormatError(f"{root / 'u.genre'} lists no genres")
    genre_names = genres.sort_values("index")["genre"].tolist()
    item_cols = ["item_id", "title", "release_date", "video_release_date", "url", *genre_names]
    raw = _unique_ids(
        _read(root / "u.item", sep="|", names=item_cols, encoding="latin-1"),
        "item_id",
        root / "u.item",
    )
    flags = raw[genre_names].to_numpy()
    if not np.isin(flags, (0, 1)).all():
        raise FormatError(f"{root / 'u.item'}: genre flags must be 0 or 1")
    names = np.array(genre_names, dtype=object)
    movies = pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": raw["title"].fillna("").astype(str),
            "release_date": raw["release_date"],
            "genres": ["|".join(g for g in names[row == 1] if g != "unknown") for row in flags],
        }
    )
    path = root / "u.user"
    users = _read(path, sep="|", names=["user_id", "age", "gender", "occupation", "zip_code"])
    return ratings, movies, _unique_ids(users, "user_id", path)


def _parse_1m(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    # '::' separated; ratings and users hold no ':' so the fast parser splits on ':' alone.
    cols = ["user_id", "item_id", "rating", "timestamp"]
    path = root / "ratings.dat"
    raw = _read(path, sep=":", names=_double_colon(cols), shown_sep="::")
    ratings = _check_ratings(raw[cols], path)
    lines = (root / "movies.dat").read_text(encoding="latin-1").splitlines()
    parts = [line.split("::") for line in lines if line]
    if any(len(p) != 3 for p in parts):
        raise FormatError(f"{root / 'movies.dat'}: expected MovieID::Title::Genres per line")
    movies = pd.DataFrame(parts, columns=["item_id", "title", "genres"])
    movies["item_id"] = movies["item_id"].astype(np.int64)
    _unique_ids(movies, "item_id", root / "movies.dat")
    ucols = ["user_id", "gender", "age", "occupation", "zip_code"]
    users = _read(root / "users.dat", sep=":", names=_double_colon(ucols), shown_sep="::")
    return ratings, movies, _unique_ids(users[ucols], "user_id", root / "users.dat")


def _double_colon(cols: list[str]) -> list[str]:
    """Column names for a '::' file read with sep=':' (an empty field between each pair)."""
    return [name for j, col in enumerate(cols) for name in ((col,) if j == 0 else ("_" + col, col))]


def _parse_latest(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    ratings = pd.read_csv(root / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id"}
    )
    if list(ratings.columns) != ["user_id", "item_id", "rating", "timestamp"]:
        raise FormatError(f"{root / 'ratings.csv'}: unexpected columns {list(ratings.columns)}")
    movies = pd.read_csv(root / "movies.csv").rename(columns={"movieId": "item_id"})
    movies["genres"] = movies["genres"].replace("(no genres listed)", "")
    _unique_ids(movies, "item_id", root / "movies.csv")
    return _check_ratings(ratings, root / "ratings.csv"), movies, None


def _tag_count(tags: bool | int, variant: str) -> int:
    if isinstance(tags, bool):
        n = TAGS_PER_ITEM if tags else 0
    elif isinstance(tags, int) and tags >= 0:
        n = tags
    else:
        raise TypeError(f"tags must be a bool or an int >= 0, got {tags!r}")
    if n and variant != "latest-small":
        raise ValueError(f"tags: MovieLens {variant} has no user tags (latest-small has)")
    return n


def _read_tags(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"tags=True needs {path} (part of ml-latest-small)")
    tags = pd.read_csv(path).rename(columns={"userId": "user_id", "movieId": "item_id"})
    if not {"item_id", "tag", "timestamp"} <= set(tags.columns):
        raise FormatError(f"{path}: expected columns userId, movieId, tag, timestamp")
    return tags


def _with_tags(movies: pd.DataFrame, tags: pd.DataFrame, n: int) -> list[str]:
    """Each movie's text with its ``n`` most frequent tags appended (ties: first used)."""
    tags = tags.dropna(subset=["tag"]).sort_values("timestamp", kind="stable")
    tags = tags.assign(tag=tags["tag"].astype(str).str.strip())
    tags = tags[tags["tag"] != ""]
    counts = tags.groupby(["item_id", "tag"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n"], ascending=[True, False], kind="stable")
    top = counts.groupby("item_id", sort=False)["tag"].apply(lambda t: ", ".join(t.iloc[:n]))
    texts = []
    for item, text in zip(movies["item_id"], movies["text"], strict=True):
        extra = top.get(item)
        texts.append(f"{text}. Tags: {extra}" if extra else text)
    return texts


_SENTENCE_END = re.compile(r"([.!?])\s+(?=[A-Z0-9\"'])")
# A period after one of these words (or an initial, or a word holding a period: "U.S.") ends an
# abbreviation, not the sentence: "directed by John G. Avildsen" is one sentence.
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms st jr sr mt vs no lit transl bros vol ltd inc co ft gen col lt sgt capt "
    "rev prof".split()
)


def first_sentence(text: str) -> str:
    """The first sentence of ``text``: up to the first ``.``, ``!`` or ``?`` followed by space
    and a capital, a digit or a quote, where a ``.`` does not end an initial or an abbreviation.

    Examples
    --------
    >>> from semrec.datasets._movielens import first_sentence
    >>> first_sentence("Rocky is a film directed by John G. Avildsen. It won three Oscars.")
    'Rocky is a film directed by John G. Avildsen.'
    """
    for end in _SENTENCE_END.finditer(text):
        if end.group(1) == ".":
            before = text[: end.start()].split()
            word = before[-1].lstrip("(\"'") if before else ""
            if (len(word) == 1 and word.isalpha()) or "." in word or word.lower() in _ABBREVIATIONS:
                continue
        return text[: end.start() + 1]
    return text


def _item_text(movies: pd.DataFrame, wiki_path: Path) -> list[str]:
    wiki = _read_wiki(wiki_path)
    texts = []
    for title, genres in zip(movies["title"], movies["genres"], strict=True):
        genre_list = ", ".join(g for g in str(genres).split("|") if g)
        text = f"{title} — {genre_list}" if genre_list else str(title)
        if title in wiki:
            text = f"{text}. {wiki[title]}"
        texts.append(text)
    return texts


def _read_wiki(path: Path) -> dict[str, str]:
    """First sentence of each title's summary from the optional ``movie_wiki.csv``; a file
    that cannot be used is skipped with a warning (the movie text then lacks the summaries)."""
    if not path.exists():
        return {}
    skip = "the item text goes without Wikipedia summaries"
    try:
        table = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        logger.warning("%s is not a readable UTF-8 CSV file (%s); %s", path, exc, skip)
        return {}
    if not {"movie_title", "wiki_summary"} <= set(table.columns):
        logger.warning(
            "%s has columns %s, not movie_title and wiki_summary; %s",
            path,
            list(table.columns),
            skip,
        )
        return {}
    repeated = table["movie_title"].duplicated()
    if repeated.any():
        logger.warning(
            "%s lists %d titles more than once (e.g. %r); the last summary of each is used",
            path,
            int(repeated.sum()),
            str(table["movie_title"][repeated].iloc[0]),
        )
    wiki: dict[str, str] = {}
    for title, summary in zip(table["movie_title"], table["wiki_summary"], strict=True):
        if isinstance(summary, str) and summary.strip():
            first = first_sentence(summary.strip())
            wiki[str(title)] = " ".join(first.split())
    return wiki
