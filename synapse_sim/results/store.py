"""The HDF5 results store: one crash-safe file per run.

:class:`ResultsWriter` keeps everything in memory and, after every change, writes a
complete snapshot to ``path + ".tmp"``, flushes and fsyncs it, and renames it onto
``path`` with :func:`os.replace`. The file at ``path`` is therefore always a complete,
readable snapshot: a crash (even ``kill -9``) at any moment leaves either the previous
snapshot or the new one, never a half-written file. The root attribute ``complete`` is
True only after :meth:`ResultsWriter.close` with ``complete=True``.

:func:`read_results` returns the file as plain Python and numpy objects,
:func:`summary_records` flattens it into one JSON-able dict per run, and
:func:`format_table` renders those records as a markdown table. The layout is
documented in ``docs/results-format.md``.

This module is the public face of the store; the code lives in :mod:`.writer` (the writer),
:mod:`.reading` (reading, summaries, tables) and :mod:`.h5io` (shared checks and file helpers).
"""

from __future__ import annotations

from .h5io import (  # noqa: F401 - RUN_ORDERS: a name of this module before the split
    RUN_ORDERS,
    SCHEMA_VERSION,
    WRITE_MODES,
    ResumeMismatchError,
    check_writable,
    package_versions,
    results_kind,
)
from .reading import format_table, read_results, summary_records
from .writer import ResultsWriter

__all__ = [
    "SCHEMA_VERSION",
    "WRITE_MODES",
    "ResultsWriter",
    "ResumeMismatchError",
    "check_writable",
    "results_kind",
    "format_table",
    "package_versions",
    "read_results",
    "summary_records",
]
