"""The HTML report of ``semrec demo``: one self-contained page (inline CSS and PNG figures, no
script, nothing fetched), with real tables, lists and a header of the run's settings and timings.

The page is built from plain data (:class:`Table`, :class:`Items`, :class:`Text` blocks inside
named sections), so the demo decides what to show and this module only how.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_CSS = """
:root{color-scheme:light;--line:#d9dde3;--muted:#5b6470;--best:#e6f4ea;--accent:#1a5fb4}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;
margin:0 auto;max-width:1100px;padding:1.5rem 1.25rem 3rem;overflow-wrap:anywhere}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:1px solid var(--line);padding-bottom:.2rem}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.4rem 0}
header dt{color:var(--muted)}header dd{margin:0}
.caption,figcaption,.note{color:var(--muted);font-size:.9rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 .2rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:.3rem .7rem;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #aab2bd;font-weight:600}
td.best{background:var(--best);font-weight:700}
td.na{color:var(--muted)}
ol,ul{padding-left:1.6rem;margin:.3rem 0}li{margin:.25rem 0}
li .why{display:block;color:var(--muted);font-size:.9rem}
.tag{display:inline-block;background:#eef1f5;border-radius:3px;padding:0 .35rem;
font-size:.8rem;color:#37414d;margin-left:.3rem}
.score{color:var(--muted);font-variant-numeric:tabular-nums;margin-left:.3rem}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));
gap:1rem}
figure{margin:0;border:1px solid var(--line);border-radius:4px;padding:.5rem}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
"""


@dataclass
class Table:
    """Rows of cells under a header; ``best`` marks, per column index, the highest value."""

    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    best: Sequence[int] = ()
    caption: str = ""
    digits: int = 4


@dataclass
class Item:
    """One list entry: its text, optional tag (label) and score, and an explanation line."""

    text: str
    tag: str = ""
    score: float | None = None
    why: str = ""


@dataclass
class Items:
    entries: Sequence[Item]
    title: str = ""
    ordered: bool = True


@dataclass
class Text:
    text: str


@dataclass
class Section:
    title: str
    blocks: list[Table | Items | Text] = field(default_factory=list)


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(t: Table) -> str:
    winners: dict[int, float] = {}
    for col in t.best:
        values = [r[col] for r in t.rows if isinstance(r[col], int | float) and r[col] == r[col]]
        if values:
            winners[col] = max(values)
    head = "".join(f"<th scope='col'>{html.escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = []
        for col, value in enumerate(row):
            classes = []
            if col in winners and value == winners[col]:
                classes.append("best")
            if value is None:
                classes.append("na")
            cls = f" class='{' '.join(classes)}'" if classes else ""
            tag = "th scope='row'" if col == 0 else "td"
            cells.append(f"<{tag}{cls}>{_cell(value, t.digits)}</{tag.split()[0]}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<p class='caption'>{html.escape(t.caption)}</p>" if t.caption else ""
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{caption}"
    )


def _items(block: Items) -> str:
    out = [f"<h3>{html.escape(block.title)}</h3>"] if block.title else []
    tag = "ol" if block.ordered else "ul"
    out.append(f"<{tag}>")
    for e in block.entries:
        label = f"<span class='tag'>{html.escape(e.tag)}</span>" if e.tag else ""
        score = f"<span class='score'>{e.score:.3f}</span>" if e.score is not None else ""
        why = f"<span class='why'>{html.escape(e.why)}</span>" if e.why else ""
        out.append(f"<li>{html.escape(e.text)}{label}{score}{why}</li>")
    out.append(f"</{tag}>")
    return "".join(out)


def _block(block: Table | Items | Text) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Items):
        return _items(block)
    return f"<p class='note'>{html.escape(block.text)}</p>"


def render(
    title: str,
    settings: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    figures: dict[str, tuple[bytes, str]],
) -> bytes:
    """The whole page as UTF-8 bytes.

    ``settings`` are (name, value) pairs for the header; ``figures`` maps a name to PNG bytes
    and a caption, embedded as data URIs so the file stands alone.

    Examples
    --------
    >>> from semrec.cli.report import Section, Table, render
    >>> page = render("t", [("seed", "0")], [Section("s", [Table(["m", "x"], [["a", 1.0]])])], {})
    >>> page.startswith(b"<!doctype html>") and b"<table>" in page
    True
    """
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><dl>",
    ]
    for name, value in settings:
        parts.append(f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>")
    parts.append("</dl></header><main>")
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        parts.extend(_block(b) for b in section.blocks)
        parts.append("</section>")
    if figures:
        parts.append("<section><h2>Figures</h2><div class='figures'>")
        for name, (png, caption) in figures.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure id='{html.escape(name)}'><img alt='{html.escape(caption)}' "
                f"src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append("</main></body></html>\n")
    return "".join(parts).encode("utf-8")
