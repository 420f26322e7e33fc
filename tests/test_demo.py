"""``semrec demo`` end to end at --size tiny: the table, the report, the figures, failures."""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semrec
from semrec import split
from semrec.cli import main
from semrec.datasets import synthetic

# --size tiny is documented as 300 users x 500 items, 8000 interactions (seed from --seed).
TINY = (300, 500, 8_000)
SEED = 3
MODELS = ("random", "most-popular", "ALS", "ItemKNN", "content", "ColdStartALS", "hybrid")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo") / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            ["demo", "--size", "tiny", "--seed", str(SEED), "--threads", "2", "--out", str(out)]
        )
    # The report as this run wrote it (a later test re-runs the demo into the same folder).
    page = (out / "report.html").read_text(encoding="utf-8") if code == 0 else ""
    return {
        "code": code,
        "out": out,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "report": page,
    }


def table_rows(stdout: str) -> dict[str, list[float | None]]:
    """The comparison table's rows: model -> [warm NDCG@10, cold Recall@20, new-user NDCG@10]."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model ")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        name, *cells = line.split()
        rows[name] = [None if c == "-" else float(c) for c in cells]
    return rows


def test_demo_exits_zero_and_prints_every_model_row(run: dict) -> None:
    assert run["code"] == 0, run["stderr"]
    rows = table_rows(run["stdout"])
    assert list(rows) == list(MODELS)
    assert all(len(cells) == 3 for cells in rows.values())
    # '-' exactly where a model does not apply.
    assert rows["ColdStartALS"][0] is None and rows["ColdStartALS"][2] is None
    assert rows["ALS"][1] is None and rows["ItemKNN"][1] is None
    assert all(v is not None for v in rows["random"] + rows["most-popular"] + rows["content"])
    for part in ("Sample user", "because you liked", "Text query", "Real-time update"):
        assert part in run["stdout"]


def test_printed_numbers_match_an_independent_evaluation(run: dict) -> None:
    rows = table_rows(run["stdout"])
    ds = synthetic(*TINY, random_state=SEED)
    train, test = split.last_fraction(ds)
    warm_pop = semrec.MostPopular().fit(train.interactions)
    warm_knn = semrec.ItemKNN(100, show_progress=False).fit(train.interactions)
    for name, model in (("most-popular", warm_pop), ("ItemKNN", warm_knn)):
        ndcg = semrec.evaluate(model, train, test, k=10, metrics=["ndcg"]).loc[10, "ndcg"]
        assert rows[name][0] == pytest.approx(float(ndcg), abs=5e-5)

    train, test = split.cold_items(ds, 0.1, 5, random_state=SEED)
    cold = test.split_info["cold_items"]
    pop = semrec.MostPopular().fit(train.interactions)
    recall = semrec.evaluate(pop, train, test, k=20, items=cold, metrics=["recall"])
    assert rows["most-popular"][1] == pytest.approx(float(recall.loc[20, "recall"]), abs=5e-5)

    train, test = split.new_users(ds, 0.1, 5, random_state=SEED)
    known = semrec.evaluation.known_history(train, test)  # train + the revealed histories
    pop = semrec.MostPopular().fit(known)
    new = semrec.evaluate(pop, train, test, k=10, users=test.split_info["users"], metrics=["ndcg"])
    assert rows["most-popular"][2] == pytest.approx(float(new.loc[10, "ndcg"]), abs=5e-5)


def test_report_and_figures_written(run: dict) -> None:
    out: Path = run["out"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.startswith("<!doctype html>") and report.rstrip().endswith("</html>")
    assert "because you liked" in report and "hybrid" in report
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert len(list((out / "cache").glob("item-embeddings-*.npy"))) == 1
    pytest.importorskip("matplotlib", reason="figures need matplotlib")
    names = ("metrics_vs_k", "mmr_tradeoff", "embedding_map", "als_training_loss")
    for name in names:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert report.count("data:image/png;base64,") == len(names)


def test_rerun_reuses_the_cached_embeddings(run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    cache = next((run["out"] / "cache").glob("item-embeddings-*.npy"))
    before = np.load(cache)
    code = main(
        ["demo", "--size", "tiny", "--seed", str(SEED), "--no-figures", "--out", str(run["out"])]
    )
    assert code == 0
    assert "cached (" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(cache), before)


def test_bad_data_dir_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", "demo", "--dataset", "ml-100k", "--data-dir",
         str(tmp_path / "nowhere"), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--data-dir" in lines[0] and "u.data" in lines[0]
    assert not out.exists()


def test_failure_while_writing_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import semrec.cli.demo as demo

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(demo, "html_report", broken)
    out = tmp_path / "out"
    code = main(["demo", "--size", "tiny", "--no-figures", "--quiet", "--out", str(out)])
    assert code == 1
    assert "disk full" in capsys.readouterr().err
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert all(p.startswith("cache/item-embeddings-") and p.endswith(".npy") for p in left)


def test_ml100k_without_data_dir_names_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dataset", "ml-100k"]) == 1
    assert "--data-dir" in capsys.readouterr().err


def test_data_dir_without_ml100k_is_an_error_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["demo", "--size", "tiny", "--data-dir", str(tmp_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data-dir" in err and "add --dataset ml-100k" in err
    assert not out.exists()


# What the page reports about itself once loaded in a browser (tables, images, layout).
PROBE = """<script>addEventListener('load', () => {
  const tables = [...document.querySelectorAll('table')].map(t => ({
    head: t.tHead ? t.tHead.rows[0].cells.length : 0,
    rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
    best: t.querySelectorAll('td.best').length}));
  const images = [...document.images].map(i => ({
    loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width}));
  const right = Math.max(...[...document.body.querySelectorAll('*')].map(
    e => e.getBoundingClientRect().right));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({tables, images, right, viewport: window.innerWidth,
    scroll: document.documentElement.scrollWidth, items: document.querySelectorAll('li').length});
  document.body.appendChild(out);
});</script>"""


def test_report_renders_in_a_browser_without_overflow(run: dict, tmp_path: Path) -> None:
    """Headless Chromium at 1280 px: real tables, every figure decoded, nothing wider."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium is not installed (Debian package chromium)")
    page = run["report"]
    # One self-contained file: nothing is fetched from anywhere.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//|file:)""", page)
    assert "<script" not in page.lower()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,900", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, flags=re.S)
    assert found, f"Chromium printed no probe result: {result.stderr[-2000:]}"
    dom = json.loads(html.unescape(found.group(1)))
    tables = dom["tables"]
    assert len(tables) >= 3  # comparison, MMR sweep, real-time update
    comparison = tables[0]
    assert comparison["head"] == 4 and comparison["rows"] == len(MODELS)
    assert comparison["best"] >= 3  # the best value of every metric column is marked
    assert len(dom["images"]) == 4
    assert all(i["loaded"] and i["width"] > 100 for i in dom["images"]), dom["images"]
    assert dom["items"] >= 8 + 5 + 5  # history, content and hybrid recommendations
    assert dom["viewport"] == 1280
    assert dom["scroll"] <= 1280 and dom["right"] <= 1280, (dom["scroll"], dom["right"])


class _Recorder:
    """An encoder that records how it was called (hashed vectors, as the demo's fallback)."""

    identity = "recorder"
    dim = 384

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        import semrec.cli.demo as demo

        self.calls.append(kwargs)
        return demo.HashedEncoder().encode(texts)


def test_damaged_embedding_cache_is_encoded_again(tmp_path: Path) -> None:
    import semrec.cli.demo as demo

    texts = ["red apples", "green pears", "blue plums"]
    encoder = _Recorder()
    console = demo._Console(quiet=True)
    demo.embed(texts, encoder, tmp_path, console)
    cache = next((tmp_path / "cache").glob("item-embeddings-*.npy"))
    cache.write_bytes(cache.read_bytes()[:100])  # cut short, as by a full disk or a kill
    again, how = demo.embed(texts, encoder, tmp_path, console)
    assert how.startswith("encoded") and len(encoder.calls) == 2
    np.testing.assert_array_equal(again, demo.HashedEncoder().encode(texts))
    np.testing.assert_array_equal(np.load(cache), again)  # the cache is whole again


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import semrec.cli.demo as demo

    encoder = _Recorder()
    assert not sys.stderr.isatty()  # pytest captures it: as in a log file
    demo.embed(["red apples"], encoder, tmp_path, demo._Console(quiet=False))
    assert encoder.calls == [{"show_progress": False}]


def test_sample_user_is_named_by_its_raw_id() -> None:
    from semrec.cli.demo_user import sample_part, update_part
    from semrec.datasets import Dataset

    frame = {"user": ["ann", "ann", "bob", "bob"], "item": [1, 2, 1, 3], "w": [5.0, 4.0, 3.0, 5.0]}
    ds = Dataset.from_pandas(pd.DataFrame(frame), "user", "item", "w")
    u = int(np.flatnonzero(ds.user_ids == "bob")[0])  # index 1, id "bob"

    class NoRecs:
        def recommend(self, user: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
            return np.full(k, -1), np.full(k, -np.inf)

        def update(self, *args: object) -> None:
            pass

    models = {"content": NoRecs(), "hybrid": NoRecs(), "ALS": NoRecs()}
    names = np.array(["one", "two", "three"], dtype=object)
    labels = np.array(["a", "b", "c"], dtype=object)
    text, section, _ = sample_part(models, ds, ds, u, names, labels)
    assert text.startswith("Sample user bob (") and section.title == "Sample user bob"
    text, _ = update_part(models, ds, u, np.array([0]), names, labels)
    assert text.startswith("Real-time update: user bob clicks")
