"""Fetching an archive into the cache folder: progress bar, checksum check, atomic rename."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
import zipfile
from pathlib import Path

from semrec.errors import FormatError

logger = logging.getLogger("semrec")

_CHUNK = 1 << 16


def cache_dir() -> Path:
    """The folder downloads go to: ``$SEMREC_DATA`` or ``~/.cache/semrec``."""
    env = os.environ.get("SEMREC_DATA")
    return Path(env) if env else Path.home() / ".cache" / "semrec"


def fetch(url: str, dest: Path, *, md5: str | None, show_progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` unless already there; verify its MD5 when given."""
    if dest.exists() and (md5 is None or _md5(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(dest.suffix + ".part")
    logger.info("downloading %s to %s", url, dest)
    # Imported here: tqdm.auto warns at import time in a Jupyter kernel without ipywidgets,
    # and importing semrec must stay silent.
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        digest = hashlib.md5()
        with (
            open(partial, "wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, disable=not show_progress) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    if md5 is not None and digest.hexdigest() != md5.lower():
        partial.unlink()
        raise FormatError(
            f"checksum mismatch for {url}: got MD5 {digest.hexdigest()}, expected {md5}; "
            "the download is corrupt or the file changed, try again"
        )
    partial.replace(dest)
    return dest


def fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read().decode("ascii", errors="replace")


def extract(archive: Path, into: Path) -> None:
    """Unzip ``archive`` into ``into``, refusing members that would escape it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            root = into.resolve()
            for name in zf.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise FormatError(f"{archive} holds an unsafe path {name!r}")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise FormatError(f"{archive} is not a valid zip archive: {exc}") from exc


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
