"""The paths semrec saves to and loads from: one check for every save and load.

A save writes a temporary file beside its target and renames it over the target (atomic: a
crash never leaves half a file). A rename replaces whatever the name pointed at, so the target
must be a regular file's path: a rename over ``/dev/null`` would replace the device, one over
a symbolic link would replace the link. Links are followed to the file they name, and
anything else that is not a regular file is refused before any byte is written. The file
that a save replaces keeps its permission bits (a model saved 0600 stays private). A leading
``~`` is the home directory, for saves and loads alike, as the text module reads it.
"""

from __future__ import annotations

import os
import secrets
import stat
from typing import Any


def readable_path(path: Any, name: str = "path") -> str:
    """``path`` as a str, a leading ``~`` expanded to the home directory; an int (an open file
    descriptor to ``open``) or any other non-path is a TypeError, as reading would block on it
    or close it behind the caller's back.

    Examples
    --------
    >>> import os
    >>> from semrec._files import readable_path
    >>> readable_path("~/model.npz") == os.path.join(os.path.expanduser("~"), "model.npz")
    True
    >>> readable_path(0)
    Traceback (most recent call last):
    ...
    TypeError: path must be a file path (str or os.PathLike), got int
    """
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(
            f"{name} must be a file path (str or os.PathLike), got {type(path).__name__}"
        )
    target = os.fspath(path)
    target = os.fsdecode(target) if isinstance(target, bytes) else target
    # Not expanded, "~/m.npz" would be a folder named "~" in the working directory.
    return os.path.expanduser(target)


def loadable_path(path: Any, name: str = "path") -> str:
    """The file a load should read: ``path`` as a str (see :func:`readable_path`); a directory
    there is an IsADirectoryError that says what to give instead.

    Examples
    --------
    >>> import tempfile
    >>> from semrec._files import loadable_path
    >>> loadable_path(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    IsADirectoryError: path '...' is a directory; give the path of a file written by save
    """
    target = readable_path(path, name)
    if os.path.isdir(target):
        raise IsADirectoryError(
            f"{name} {target!r} is a directory; give the path of a file written by save"
        )
    return target


def writable_path(path: Any, name: str = "path") -> str:
    """The file a save should replace: ``path`` through any symbolic links; a directory, a
    device, a pipe or a socket there is a ValueError (nothing is written).

    Examples
    --------
    >>> import os, tempfile
    >>> from semrec._files import writable_path
    >>> folder = tempfile.mkdtemp()
    >>> os.symlink(os.path.join(folder, "model.npz"), os.path.join(folder, "latest.npz"))
    >>> os.path.basename(writable_path(os.path.join(folder, "latest.npz")))
    'model.npz'
    >>> writable_path(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: path '...' is a directory; give the path of a file to write
    """
    target = readable_path(path, name)
    if not target:
        raise ValueError(f"{name} is empty; give the path of a file to write")
    if os.path.islink(target):
        target = os.path.realpath(target)  # the link keeps naming the new file
    if os.path.lexists(target) and not os.path.isfile(target):
        what = (
            "a directory"
            if os.path.isdir(target)
            else "not a regular file (a device, pipe or socket), which a save would replace"
        )
        raise ValueError(f"{name} {target!r} is {what}; give the path of a file to write")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{name} {target!r} is in a directory that does not exist ({folder!r}); create it "
            "first, e.g. os.makedirs(folder, exist_ok=True)"
        )
    if not os.access(folder, os.W_OK | os.X_OK):  # the temporary file is written there first
        raise PermissionError(
            f"{name} {target!r} cannot be written: the directory {folder!r} is not writable "
            "by this process"
        )
    return target


def temporary_beside(target: str) -> str:
    """A fresh name for the temporary file a save writes before renaming it over ``target``:
    in the same directory (so the rename is atomic), ending in ``target``'s own name (writers
    that infer a format from the ending see the same one), and unique to the call, process id
    and random token both, so that concurrent saves, even threads of one process, never write
    into one temporary file.

    Examples
    --------
    >>> from semrec._files import temporary_beside
    >>> a, b = temporary_beside("/data/model.npz"), temporary_beside("/data/model.npz")
    >>> a.startswith("/data/.") and a.endswith(".tmp-model.npz") and a != b
    True
    """
    folder, base = os.path.split(target)
    prefix = f".{secrets.token_hex(6)}-{os.getpid()}.tmp-"
    while len(os.fsencode(prefix + base)) > _NAME_MAX and len(base) > 1:
        base = base[1:]  # a name the target's fits in: its ending kept
    return os.path.join(folder or ".", prefix + base)


_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


def replace(tmp: str, target: str) -> None:
    """Rename the finished temporary file ``tmp`` over ``target``, giving it ``target``'s
    permission bits first when ``target`` exists (the temporary file was created under the
    umask: renamed as it is, a file chmod-ed 0600 would become readable by everyone); a new
    file keeps the umask's default.

    Examples
    --------
    >>> import os, stat, tempfile
    >>> from semrec._files import replace, temporary_beside
    >>> target = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> open(target, "w").close(); os.chmod(target, 0o600)
    >>> tmp = temporary_beside(target); open(tmp, "w").close()
    >>> replace(tmp, target); oct(stat.S_IMODE(os.stat(target).st_mode))
    '0o600'
    """
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None  # a new file (or one removed meanwhile): the umask's default stands
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, target)
