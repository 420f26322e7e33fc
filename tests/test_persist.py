"""Saved models: every load checks everything it reads (issue 16), and damaged files never load
as anything but the model that was saved.

The fuzz tests feed every saved-model format the corruptions of ``tests/fuzzing.py``
(truncations, flipped bits, overwritten and removed runs of bytes): each must raise
:class:`semrec.FormatError` or load a model that recommends exactly like the original.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from fuzzing import corruptions

import semrec
from semrec import _persist as persist
from semrec.datasets import synthetic

N_USERS, N_ITEMS = 30, 20


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_array, np.ndarray]:
    x = synthetic(N_USERS, N_ITEMS, 250, n_topics=3, with_text=False, random_state=5).interactions
    emb = np.random.default_rng(5).standard_normal((N_ITEMS, 6)).astype(np.float32)
    return x, emb


def _als(**kw: Any) -> semrec.ALS:
    return semrec.ALS(factors=3, iterations=2, random_state=0, show_progress=False, **kw)


FORMATS = {
    "ALS": lambda emb: _als(),
    "ALS-explicit": lambda emb: _als(feedback="explicit", biases=True, regularization=1.0),
    "MostPopular": lambda emb: semrec.MostPopular(),
    "Random": lambda emb: semrec.Random(random_state=1),
    "ContentRecommender": lambda emb: semrec.ContentRecommender(emb, show_progress=False),
    "ItemKNN": lambda emb: semrec.ItemKNN(5, weighting="bm25", show_progress=False),
    "UserKNN": lambda emb: semrec.UserKNN(5, show_progress=False),
    "ColdStartALS": lambda emb: semrec.ColdStartALS(_als(), emb),
    "Hybrid": lambda emb: semrec.Hybrid([(_als(), 0.6), (semrec.MostPopular(), 0.4)]),
    "TextCF": lambda emb: semrec.TextCF(
        emb, hidden=8, factors=4, epochs=1, random_state=0, show_progress=False
    ),
    "TextCFItemBias": lambda emb: semrec.TextCF(
        emb, hidden=8, factors=4, epochs=1, item_bias=True, random_state=0, show_progress=False
    ),
    "TextCFItemsPopularity": lambda emb: semrec.TextCF(
        emb,
        hidden=8,
        factors=4,
        epochs=1,
        user_vectors="items",
        popularity=0.5,
        random_state=0,
        show_progress=False,
    ),
    "TextCFColdMap": lambda emb: semrec.TextCF(
        emb, hidden=8, factors=4, epochs=1, cold_penalty=2.0, random_state=0, show_progress=False
    ),
}


def fitted(name: str, data: tuple[sp.csr_array, np.ndarray]) -> Any:
    x, emb = data
    return FORMATS[name](emb).fit(x)  # Hybrid.fit fits its members and keeps x as seen items


def same_model(a: Any, b: Any) -> None:
    users = np.arange(a.n_users_)
    for got, want in zip(a.recommend(users, k=8), b.recommend(users, k=8), strict=True):
        np.testing.assert_array_equal(got, want)
    assert repr(a) == repr(b)


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_corruption_is_refused_or_loads_the_same_model(
    name: str, data: Any, tmp_path: Path
) -> None:
    model = fitted(name, data)
    path = tmp_path / "model.npz"
    model.save(path)
    blob = path.read_bytes()
    cls = type(model)
    for what, damaged in corruptions(blob):
        path.write_bytes(damaged)
        try:
            loaded = cls.load(path)
        except semrec.FormatError:
            continue
        except Exception as exc:  # the point: nothing else may escape
            raise AssertionError(f"{name}, {what}: {type(exc).__name__}: {exc}") from exc
        same_model(loaded, model)


# -- issue 16: each damage named, refused before anything is built ---------------------------------


def rewrite(path: Path, change: Any) -> None:
    """Load the saved arrays and metadata, let ``change(meta, arrays)`` edit them, and save them
    again with fresh checksums: the damage a checksum cannot see."""
    saved = persist.read(path, json.loads(_metadata(path))["format"], 2)
    meta = {k: v for k, v in saved.meta.items() if k != "checksums"}
    arrays = {k: np.array(v) for k, v in saved.arrays.items()}
    change(meta, arrays)
    persist.write(path, meta, arrays)


def load_of_edited(name: str, data: Any, path: Path, change: Any) -> Callable[[], Any]:
    """Save a fitted ``name`` to ``path``, edit it with :func:`rewrite`, and return the load of
    it (to call under ``pytest.raises``)."""
    fitted(name, data).save(path)
    rewrite(path, change)
    return lambda: type(fitted(name, data)).load(path)


def replace_member(path: Path, member: str, change: Any) -> None:
    """Rewrite one member of the archive with ``change(bytes)`` (a new archive: its own CRCs
    are right, only semrec's checks can notice)."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members[member] = change(members[member])
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)


def _ids_past_int32(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    # int64 ids past int32: 2**32 + 1 used to wrap to 1 in the cast before the range check
    arrays["interactions_indices"] = arrays["interactions_indices"].astype(np.int64) + 2**32


def _metadata(path: Path) -> str:
    with np.load(path) as z:
        return z["metadata"].tobytes().decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m, a: a["users"].__setitem__((0, 0), np.nan), "users"),
        (lambda m, a: a.__setitem__("items", a["items"][:, :2].copy()), "items"),
        (lambda m, a: a["interactions_data"].__setitem__(0, -1.0), "interactions_data"),
        (lambda m, a: a["interactions_indices"].__setitem__(0, 999), "interactions"),
        (_ids_past_int32, "interactions_indices holds values beyond int32"),
        (lambda m, a: m.__setitem__("global_mean", "x"), "global_mean"),
        (lambda m, a: m.__setitem__("global_mean", 1e308), "global_mean"),
        (lambda m, a: m["params"].__setitem__("factors", -3), "factors"),
        (lambda m, a: m["params"].__setitem__("mystery", 1), "params"),
        (lambda m, a: a.pop("items"), "items"),
    ],
    ids=[
        "nan-factors",
        "wrong-width",
        "negative-implicit-weight",
        "item-outside",
        "item-past-int32",
        "mean-not-a-number",
        "mean-past-float32",
        "bad-hyperparameter",
        "unknown-hyperparameter",
        "missing-array",
    ],
)
def test_als_load_checks_every_field(data: Any, tmp_path: Path, change: Any, field: str) -> None:
    path = tmp_path / "als.npz"
    fitted("ALS", data).save(path)
    rewrite(path, change)
    with pytest.raises(semrec.FormatError, match=field) as caught:
        semrec.ALS.load(path)
    assert str(path) in str(caught.value)


def test_a_huge_array_header_is_refused_before_allocating(data: Any, tmp_path: Path) -> None:
    """A .npy header that claims 10**12 elements (4 TB): refused from the sizes alone."""
    path = tmp_path / "als.npz"
    fitted("ALS", data).save(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    replace_member(path, "users.npy", lambda blob: header.getvalue() + b"\x00" * 16)
    with pytest.raises(semrec.FormatError, match="claims 1000000000000 values"):
        semrec.ALS.load(path)


def test_a_flipped_byte_in_an_array_is_caught_by_the_checksum(data: Any, tmp_path: Path) -> None:
    path = tmp_path / "als.npz"
    fitted("ALS", data).save(path)

    def flip(blob: bytes) -> bytes:  # one bit of a factor: still a finite float
        return blob[:-3] + bytes([blob[-3] ^ 0x10]) + blob[-2:]

    replace_member(path, "users.npy", flip)
    with pytest.raises(semrec.FormatError, match="'users' does not match its checksum"):
        semrec.ALS.load(path)


def test_members_are_checked_like_models(data: Any, tmp_path: Path) -> None:
    path = tmp_path / "hybrid.npz"
    fitted("Hybrid", data).save(path)
    loaded = semrec.Hybrid.load(path)
    same_model(loaded, fitted("Hybrid", data))
    rewrite(path, lambda m, a: a["member0/users"].__setitem__((1, 1), np.inf))
    with pytest.raises(semrec.FormatError, match="member0/users"):
        semrec.Hybrid.load(path)
    fitted("Hybrid", data).save(path)  # a member without its weight is not silently dropped
    rewrite(path, lambda m, a: m.__setitem__("weights", m["weights"][:-1]))
    with pytest.raises(semrec.FormatError, match="weights lists 1 weights for more members"):
        semrec.Hybrid.load(path)
    fitted("Hybrid", data).save(path)
    rewrite(path, lambda m, a: m["member1"].__setitem__("format", "semrec.Nothing"))
    with pytest.raises(semrec.FormatError, match=r"semrec\.Nothing"):
        semrec.Hybrid.load(path)


def test_content_events_that_overflow_a_profile_are_a_corrupt_file(data: Any, tmp_path: Path):
    # Files written before fit refused such weights replayed into a plain ValueError.
    path = tmp_path / "content.npz"
    fitted("ContentRecommender", data).save(path)
    rewrite(path, lambda m, a: a["event_weights"].__setitem__(slice(0, 3), 3e38))
    with pytest.raises(semrec.FormatError, match=r"events cannot be replayed.*float32's range"):
        semrec.ContentRecommender.load(path)


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("ALS", "iterations", "x"),
        ("ALS", "calculate_training_loss", "no"),
        ("ALS", "random_state", -5),
        ("ALS", "show_progress", [1]),
        ("ItemKNN", "show_progress", "yes"),
        ("ContentRecommender", "encoder", "x"),
        ("ContentRecommender", "show_progress", 2),
    ],
)
def test_hyperparameters_fit_checks_are_checked_at_load(
    data: Any, tmp_path: Path, name: str, param: str, value: Any
) -> None:
    # Edited (checksums recomputed): they loaded, and failed only at a later refit or query.
    def change(meta: dict[str, Any], arrays: dict[str, Any]) -> None:
        meta["params"][param] = value

    load = load_of_edited(name, data, tmp_path / "model.npz", change)
    with pytest.raises(semrec.FormatError, match=param):
        load()


@pytest.mark.parametrize(
    ("name", "field", "change"),
    [
        ("ItemKNN", "shape", lambda m, a: m.__setitem__("shape", [m["shape"][0], 2**63])),
        ("UserKNN", "weighted_shape", lambda m, a: m["weighted_shape"].__setitem__(1, 2**31)),
        ("MostPopular", "shape", lambda m, a: m.__setitem__("shape", [2**40, m["shape"][1]])),
        ("ContentRecommender", "n_users", lambda m, a: m.__setitem__("n_users", 2**31)),
    ],
)
def test_sizes_past_int32_are_a_corrupt_file_not_an_allocation(
    data: Any, tmp_path: Path, name: str, field: str, change: Any
) -> None:
    # Edited sizes (checksums recomputed) raised OverflowError or sized allocations of GiBs.
    load = load_of_edited(name, data, tmp_path / "model.npz", change)
    with pytest.raises(semrec.FormatError, match=rf"{field} must (hold sizes in|be <=)"):
        load()


def _one_user_more(name: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    """A neighbour model's weighted matrix (fit-time items x users, users x items for
    UserKNN) grown by an empty user the interactions do not have: it loaded, the metadata
    disagreeing with the arrays (session 44 verify, N2)."""

    def change(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if name == "ItemKNN":  # a column more, and its idf (bm25)
            meta["weighted_shape"][1] += 1
            arrays["idf"] = np.append(arrays["idf"], 1.0)
        else:  # a row more
            meta["weighted_shape"][0] += 1
            indptr = arrays["weighted_indptr"]
            arrays["weighted_indptr"] = np.append(indptr, indptr[-1])

    return change


@pytest.mark.parametrize(
    ("name", "field", "change"),
    [
        ("TextCF", "best_epoch", lambda m, a: m.__setitem__("best_epoch", 1)),  # 1 epoch: [0]
        ("TextCF", "best_epoch", lambda m, a: m.__setitem__("best_epoch", -1)),
        ("TextCF", "history", lambda m, a: m.__setitem__("history", [])),
        ("TextCF", "history", lambda m, a: m.__setitem__("history", [3.5])),
        ("ItemKNN", "idf", lambda m, a: a.__setitem__("idf", -a["idf"] - 1)),
        ("ItemKNN", "weighted_shape", _one_user_more("ItemKNN")),
        ("UserKNN", "weighted_shape", _one_user_more("UserKNN")),
    ],
)
def test_fitted_values_out_of_their_range_are_a_corrupt_file(
    data: Any, tmp_path: Path, name: str, field: str, change: Any
) -> None:
    # Edited (checksums recomputed): they loaded; a negative idf turned similarities around.
    load = load_of_edited(name, data, tmp_path / "model.npz", change)
    with pytest.raises(semrec.FormatError, match=f"corrupt: {field}"):
        load()


@pytest.mark.parametrize(
    ("name", "field", "change"),
    [
        ("UserKNN", "shape", lambda m, a: m["shape"].__setitem__(1, 2**31 - 1)),
        ("ItemKNN", "weighted_shape", lambda m, a: m["weighted_shape"].__setitem__(1, 2**31 - 1)),
        ("MostPopular", "shape", lambda m, a: m["shape"].__setitem__(1, 2**31 - 1)),
        ("Random", "shape", lambda m, a: m["shape"].__setitem__(1, 2**31 - 1)),
        ("ContentRecommender", "n_users", lambda m, a: m.__setitem__("n_users", 2**31 - 1)),
        ("Hybrid", "member1/shape", lambda m, a: m["member1"]["shape"].__setitem__(1, 2**31 - 1)),
    ],
)
def test_a_count_only_metadata_states_must_fit_in_memory(
    data: Any, tmp_path: Path, monkeypatch: Any, name: str, field: str, change: Any
) -> None:
    # A 10 KB file (checksums recomputed) claiming 2^31 - 1 items made these loads allocate
    # 16 GiB (a scale audit, session 44): a count no array proves is refused when its arrays
    # would need over half the memory. 8 GiB here, whatever this machine has.
    monkeypatch.setattr(persist, "memory_bytes", lambda: 8 * 2**30)
    load = load_of_edited(name, data, tmp_path / "model.npz", change)
    with pytest.raises(semrec.FormatError, match=f"{field} claims 2147483647 users or items"):
        load()


# The models of the session 44 files (N2): their counts that no array backs, as they claimed.
UNBACKED = {
    "UserKNN": (lambda emb: semrec.UserKNN(5, show_progress=False), ["shape", "weighted_shape"]),
    "ItemKNN": (lambda emb: semrec.ItemKNN(5, show_progress=False), ["weighted_shape"]),
    "MostPopular": (lambda emb: semrec.MostPopular(), ["shape"]),
    "Random": (lambda emb: semrec.Random(), ["shape"]),
    "ContentRecommender": (FORMATS["ContentRecommender"], "n_users"),
    "Hybrid": (
        lambda emb: semrec.Hybrid([(_als(), 0.5), (semrec.ItemKNN(5, show_progress=False), 0.5)]),
        ["member1", "weighted_shape"],
    ),
}


def load_of_claim(name: str, data: Any, path: Path, count: int) -> Callable[[], Any]:
    """Save the :data:`UNBACKED` model ``name`` with its count edited to ``count`` (a UserKNN's
    items are in two fields, which must agree), and return the load of it."""
    make, where = UNBACKED[name]
    model = make(data[1]).fit(data[0])
    model.save(path)

    def change(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if where == "n_users":
            meta["n_users"] = count
        elif where[0] == "member1":
            meta["member1"]["weighted_shape"][1] = count
        else:
            for field in where:
                meta[field][1] = count

    rewrite(path, change)
    return lambda: type(model).load(path)


@pytest.mark.parametrize("count", [10**8, 2**31 - 1])
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("UserKNN", "shape"),
        ("ItemKNN", "weighted_shape"),
        ("MostPopular", "shape"),
        ("Random", "shape"),
        ("ContentRecommender", "n_users"),
        ("Hybrid", "member1/weighted_shape"),
    ],
)
def test_a_count_no_array_backs_is_refused_on_any_machine(
    data: Any, tmp_path: Path, monkeypatch: Any, name: str, field: str, count: int
) -> None:
    # A 10 KB file (checksums recomputed) claiming 10^8 users or items was under the memory
    # limit and loaded, allocating 1-7 GB (ContentRecommender), or the claim loaded as the
    # model's n_items_ (session 44 verify, N2); on a machine with 64 GiB even 2^31 - 1 was.
    # 1 TiB here: only the file's own arrays can refuse it, before anything is allocated.
    monkeypatch.setattr(persist, "memory_bytes", lambda: 2**40)
    load = load_of_claim(name, data, tmp_path / "model.npz", count)
    with pytest.raises(semrec.FormatError, match=f"{field} claims {count} users or items, but"):
        load()


def test_eventless_users_cost_a_profile_each(data: Any, tmp_path: Path, monkeypatch: Any) -> None:
    # A ContentRecommender's user takes a profile (6 floats here) and offsets, 56 bytes: 2e7
    # eventless users are past the 1 GiB a file may claim beyond its arrays (1.92e7 users).
    monkeypatch.setattr(persist, "memory_bytes", lambda: 2**40)
    load = load_of_claim("ContentRecommender", data, tmp_path / "m.npz", 20_000_000)
    with pytest.raises(semrec.FormatError, match="n_users claims 20000000 users or items, but"):
        load()


def test_eventless_items_within_the_allowance_save_and_load(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # One event, 10^5 items: the items without events are no corruption.
    x = sp.csr_array((np.ones(1, np.float32), ([0], [3])), shape=(2, 100_000))
    path = tmp_path / "pop.npz"
    semrec.MostPopular().fit(x).save(path)
    loaded = semrec.MostPopular.load(path)
    assert loaded.n_items_ == 100_000
    assert loaded.recommend(1, k=2)[0].tolist() == [3, 0]
    # Past the allowance (64 entries here), save says so rather than write an unloadable file
    # (Random: MostPopular's saved counts, one per item, back its items).
    monkeypatch.setattr(persist, "_UNBACKED_BYTES", 64 * 16)
    with pytest.raises(ValueError, match=r"not saved.*shape claims 100000 users or items, but"):
        semrec.Random().fit(x).save(tmp_path / "big.npz")
    with pytest.raises(ValueError, match="drop the empty rows or columns"):
        semrec.Random().fit(x).save(tmp_path / "big.npz")
    semrec.MostPopular().fit(x).save(tmp_path / "pop.npz")
    assert not (tmp_path / "big.npz").exists()


def test_running_out_of_memory_in_a_load_names_the_file_and_its_counts(
    data: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    # A count the checks accept can still be too much for this machine (or a model's derived
    # arrays): NumPy's "Unable to allocate" is not the error, the file and its claims are.
    path = tmp_path / "pop.npz"
    fitted("MostPopular", data).save(path)

    def out_of_memory(self: Any) -> None:
        raise MemoryError("Unable to allocate 5.22 GiB for an array with shape (700000000,)")

    monkeypatch.setattr(semrec.MostPopular, "_fit", out_of_memory)
    with pytest.raises(semrec.FormatError, match="ran out of memory") as caught:
        semrec.MostPopular.load(path)
    message = str(caught.value)
    assert str(path) in message and f"shape claims {N_ITEMS}" in message
    assert "Unable to allocate" not in message


def test_a_file_of_another_model_or_version_is_named(data: Any, tmp_path: Path) -> None:
    path = tmp_path / "pop.npz"
    fitted("MostPopular", data).save(path)
    with pytest.raises(semrec.FormatError, match=r"not a semrec\.ALS file.*semrec\.MostPopular"):
        semrec.ALS.load(path)
    rewrite(path, lambda m, a: m.__setitem__("version", 1))
    with pytest.raises(semrec.FormatError, match="version 1"):
        semrec.MostPopular.load(path)


def test_saves_are_atomic_and_leave_no_temporary_file(data: Any, tmp_path: Path) -> None:
    path = tmp_path / "als.npz"
    model = fitted("ALS", data)
    model.save(path)
    before = path.read_bytes()

    broken = fitted("ALS", data)
    broken._users = np.zeros((N_USERS, 3), dtype=object)  # cannot be saved: numbers only
    with pytest.raises(TypeError, match="numbers only"):
        broken.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["als.npz"]


def test_saves_follow_links_and_never_replace_what_is_not_a_file(data: Any, tmp_path: Path) -> None:
    """A save renames a temporary file over its target: through a symbolic link it must write
    the file the link names (the link stays), and a pipe, a device or a directory at the path
    must be refused, untouched (a rename over /dev/null would replace the device)."""
    model = fitted("MostPopular", data)
    real = tmp_path / "real.npz"
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    model.save(link)
    assert link.is_symlink() and real.is_file()
    same_model(model, semrec.MostPopular.load(link))
    model.save(link)  # again, over the existing file through the link
    assert link.is_symlink() and os.readlink(link) == str(real)

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for path, what in [(pipe, "not a regular file"), (tmp_path, "is a directory")]:
        with pytest.raises(ValueError, match=what):
            model.save(path)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.npz", "pipe", "real.npz"]
    if os.path.exists("/dev/null"):  # refused before anything is written
        with pytest.raises(ValueError, match="not a regular file"):
            model.save("/dev/null")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_loading_a_directory_says_to_give_a_saved_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory; give the path of a file"):
        semrec.MostPopular.load(tmp_path)


@pytest.mark.parametrize("path", [0, 3, None, 1.5])
def test_paths_must_be_paths_not_file_descriptors(data: Any, path: Any) -> None:
    # An int would be taken by open() as a file descriptor: reading stdin, or closing the
    # caller's descriptor.
    with pytest.raises(TypeError, match="path must be a file path"):
        semrec.MostPopular.load(path)
    with pytest.raises(TypeError, match="path must be a file path"):
        fitted("MostPopular", data).save(path)


@pytest.mark.parametrize("name", ["ContentRecommender", "ColdStartALS", "TextCF"])
def test_a_loaded_model_keeps_the_constructor_catalogue_after_add_items(
    data: Any, tmp_path: Path, name: str
) -> None:
    """Items added later come after the constructor's: a refit starts again from the
    constructor's ``item_embeddings`` in the loaded model as in the original."""
    x, emb = data
    model = FORMATS[name](emb).fit(x)
    model.add_items(emb[:3] + 1.0)
    model.save(tmp_path / "m.npz")
    loaded = type(model).load(tmp_path / "m.npz")
    assert repr(loaded) == repr(model)
    assert loaded.n_items_ == model.n_items_ == N_ITEMS + 3
    assert np.shape(loaded.item_embeddings) == emb.shape  # (Content saves them normalised)
    if name == "ColdStartALS":
        assert model.fit().n_items_ == loaded.fit().n_items_ == N_ITEMS
    else:
        assert model.fit(x).n_items_ == loaded.fit(x).n_items_ == N_ITEMS


def test_a_model_whose_hyperparameters_changed_after_fit_is_not_saved(
    data: Any, tmp_path: Path
) -> None:
    """Its arrays no longer match: the file would not load back. The save says so and
    writes nothing (a good file at that path stays). (ALS names the setting itself.)"""
    path = tmp_path / "model.npz"
    model = fitted("TextCF", data)
    model.save(path)
    before = path.read_bytes()
    model.factors = model.factors + 1
    match = r"not saved: the model would not load back \(user_factors"
    with pytest.raises(ValueError, match=match) as e:
        model.save(path)
    assert "changed after fit? Refit" in str(e.value) and "members" not in str(e.value)
    assert path.read_bytes() == before
    model.factors -= 1  # set back: saved again
    model.num_threads = 1  # a setting that does not shape the state may change
    model.save(path)
    assert semrec.TextCF.load(path).num_threads == 1
    als = fitted("ALS", data)
    als.factors += 1
    with pytest.raises(ValueError, match=r"factors=\d+ does not describe the learned arrays"):
        als.save(path)
    assert semrec.TextCF.load(path).num_threads == 1  # the good file stays


def test_saving_over_a_file_keeps_its_permissions(data: Any, tmp_path: Path) -> None:
    """The temporary file is created under the umask; renamed as it was, a model made private
    (0600) became readable by everyone at its next save. A new file gets the umask's default."""
    umask = os.umask(0o022)
    os.umask(umask)
    model = fitted("MostPopular", data)
    path = tmp_path / "model.npz"
    model.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    for mode in (0o600, 0o640, 0o444):
        os.chmod(path, mode)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    same_model(model, semrec.MostPopular.load(path))
    index = semrec.HNSWIndex(data[1], m=4)  # the vector indexes write through the same code
    os.chmod(path, 0o600)
    index.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_leading_tilde_is_the_home_directory(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the text module: not expanded, "~/m.npz" named a folder "~" in the working
    directory, and the error advised creating it."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    model = fitted("ALS", data)
    model.save("~/m.npz")
    assert sorted(p.name for p in home.iterdir()) == ["m.npz"]
    same_model(model, semrec.ALS.load("~/m.npz"))
    same_model(model, semrec.ALS.load(Path("~") / "m.npz"))
    index = semrec.HNSWIndex(data[1], m=4)
    index.save(Path("~/h.npz"))
    assert (home / "h.npz").is_file() and len(semrec.HNSWIndex.load("~/h.npz")) == N_ITEMS
    with pytest.raises(FileNotFoundError, match=f"directory that does not exist.*{home}/no"):
        model.save("~/no/m.npz")
    with pytest.raises(FileNotFoundError):
        semrec.ALS.load("~/missing.npz")
    assert list(cwd.iterdir()) == []  # no folder named "~"


def test_a_generator_random_state_is_saved_as_none_and_given_again_to_refit(
    data: Any, tmp_path: Path
) -> None:
    """Documented (Recommender.save, docs/concepts.md "Determinism"): a Generator is not data.
    The fitted state is saved whole; a refit of the loaded model is reproducible once a seed is
    given again."""
    x, _ = data

    def als(seed: Any) -> semrec.ALS:
        return semrec.ALS(factors=3, iterations=2, random_state=seed, show_progress=False)

    model = als(np.random.default_rng(7)).fit(x)
    model.save(tmp_path / "a.npz")
    loaded = semrec.ALS.load(tmp_path / "a.npz")
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    loaded.random_state = np.random.default_rng(7)
    reference = als(np.random.default_rng(7)).fit(x)
    np.testing.assert_array_equal(loaded.fit(x).item_factors_, reference.item_factors_)
