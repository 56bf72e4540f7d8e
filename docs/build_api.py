"""Build the API reference (``make docs``): one HTML page per public module, from the docstrings.

Uses the standard library's :mod:`pydoc` (no extra dependency). Every public module of
``devices``, ``learning_rules`` and ``synapse_sim`` (no path component starting with ``_``) is
imported and rendered; a module that fails to import or has no docstring is an error (exit
status 1, after listing every problem), like a documentation build with warnings as errors.

Usage: ``python docs/build_api.py [OUT]`` (default ``docs/api``; not committed).
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import pydoc
import sys
from pathlib import Path

PACKAGES = ("devices", "learning_rules", "synapse_sim")


def public_modules(packages=PACKAGES) -> list[str]:
    """Names of the public modules of ``packages`` (the packages themselves included)."""
    names = []
    for pkg in packages:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


def first_line(doc: str | None) -> str:
    """The first non-empty line of a docstring ('' when there is none)."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def build(out: str | Path, packages=PACKAGES) -> tuple[list[Path], list[str]]:
    """Write ``<module>.html`` for every public module and ``index.html`` into ``out``.

    Returns
    -------
    files : list of Path
        The pages written (the index last).
    problems : list of str
        One line per module that could not be imported or has no docstring (not written).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    renderer = pydoc.HTMLDoc()
    files, problems, rows = [], [], []
    for name in public_modules(packages):
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none hides others
            problems.append(f"{name}: import failed: {type(exc).__name__}: {exc}")
            continue
        if not first_line(mod.__doc__):
            problems.append(f"{name}: the module has no docstring")
            continue
        page = renderer.page(pydoc.describe(mod), renderer.document(mod, name))
        path = out / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        files.append(path)
        rows.append(
            f'<li><a href="{html.escape(name)}.html">{html.escape(name)}</a>: '
            f"{html.escape(first_line(mod.__doc__))}</li>"
        )
    index = out / "index.html"
    index.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>synapse-sim API</title>"
        "</head><body><h1>synapse-sim API reference</h1><p>Packages: "
        + ", ".join(f'<a href="{p}.html">{p}</a>' for p in packages)
        + "</p><ul>\n"
        + "\n".join(rows)
        + "\n</ul></body></html>\n",
        encoding="utf-8",
    )
    files.append(index)
    return files, problems


def main(argv=None) -> int:
    """Build into ``argv[0]`` (default ``docs/api``); 1 when any module had a problem."""
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "api"
    files, problems = build(out)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    print(f"wrote {len(files) - 1} module pages and {files[-1]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
