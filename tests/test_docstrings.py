"""Every public class and function of the package documents itself with an example that runs.

``make doctest`` (part of ``make test``) runs the examples; this test checks that each public
class and module-level function has one (a ``>>>`` line that is not skipped), so a new public
name cannot arrive without it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import semrec

# Examples that need a running Dask cluster are shown but skipped (tests/test_distributed.py
# runs the same calls on a LocalCluster).
SKIPPED_MODULES = ("semrec.distributed",)


def public_modules() -> list[str]:
    """The package's modules, without private ones and without the command line (whose API
    is its commands: ``semrec --help``, run by tests/test_cli.py)."""
    names = ["semrec"]
    for info in pkgutil.walk_packages(semrec.__path__, "semrec."):
        parts = info.name.split(".")
        if not any(part.startswith("_") for part in parts) and parts[1] != "cli":
            names.append(info.name)
    return names


def public_objects() -> list[tuple[str, object]]:
    out = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) != module_name:
                continue  # imported from elsewhere: checked where it is defined
            out.append((f"{module_name}.{name}", obj))
    return out


def runs_an_example(doc: str | None, module_name: str) -> bool:
    lines = [line.strip() for line in (doc or "").splitlines()]
    examples = [line for line in lines if line.startswith(">>>")]
    if module_name.startswith(SKIPPED_MODULES):
        return bool(examples)
    return any("doctest: +SKIP" not in line for line in examples)


def test_every_public_class_and_function_has_a_running_example() -> None:
    objects = public_objects()
    assert len(objects) > 40  # the walk found the package
    missing = [
        name
        for name, obj in objects
        if not runs_an_example(inspect.getdoc(obj), name.rsplit(".", 1)[0])
    ]
    assert not missing, f"public names without a running docstring example: {missing}"
