"""The run lifecycle of every study, written once: :class:`Study` and :func:`run_study`.

A study is a frozen, self-validating configuration (checked in ``__post_init__``) plus the loop
that trains on top of it. :func:`run_study` owns everything around the loop:

1. ``study.prepare()`` loads the data and builds what the loop needs, so that bad input fails
   before any file is written;
2. a :class:`~synapse_sim.results.ResultsWriter` for ``out/results.h5`` (kind, config and seed
   from the study), or the writer a caller passes in (several studies into one file);
3. thread limits: BLAS threads (``threadpoolctl``) and, for studies that use torch, torch's
   intra-op threads, restored afterwards;
4. ``study.execute(ctx)``: the loop, writing runs and epochs through ``ctx`` and drawing
   progress bars with :meth:`RunContext.bar`;
5. the writer closed complete (or incomplete on an error, which propagates);
6. ``study.save_outputs(result, out)``: figures and the markdown table beside the file.

Adding a study is one module under ``studies/`` (a config and a class with these methods) plus
one under ``cli/`` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Study",
    "RunContext",
    "run_study",
    "field_errors",
    "blas_threads",
    "torch_threads",
    "progress_bar",
]


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``: a widget in Jupyter, a text bar elsewhere. In a
    Jupyter kernel without ipywidgets tqdm falls back to the text bar and warns about it
    ("IProgress not found") when it is first imported, in every notebook that runs a study,
    even with the bar disabled; that warning is not shown (the text bar works)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


@runtime_checkable
class Study(Protocol):
    """What :func:`run_study` drives.

    Attributes
    ----------
    kind : str
        Results kind (root attribute ``kind`` of ``results.h5``: ``train``, ``compare``,
        ``continual``, ``qat``, ``bars``, ...).
    seed : int
        Seed recorded in the results file.
    uses_torch : bool
        Whether the loop runs torch (its threads are limited too).
    """

    kind: str
    seed: int
    uses_torch: bool

    def prepare(self) -> None:
        """Load data and build what the loop needs (errors here come before any file)."""

    def results_config(self) -> dict:
        """The root ``config`` of the results file (JSON-able)."""

    def execute(self, ctx: RunContext) -> Any:
        """Run the loop; write runs and epochs through ``ctx.writer`` (may be None)."""

    def save_outputs(self, result: Any, out: Path) -> list[Path]:
        """Write figures / tables beside the results file; return their paths."""


@dataclass
class RunContext:
    """What :func:`run_study` hands to :meth:`Study.execute`.

    Attributes
    ----------
    writer : ResultsWriter or None
        The open results writer (None without an output folder).
    progress : bool
        Whether progress bars are shown.
    """

    writer: Any
    progress: bool

    def bar(self, total: int | None = None, desc: str = "", unit: str = "batch", iterable=None):
        """A tqdm progress bar (disabled unless :attr:`progress`; :func:`progress_bar`)."""
        return progress_bar(
            iterable, total=total, desc=desc, disable=not self.progress, leave=False, unit=unit
        )


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """BLAS threads limited to ``n`` inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch intra-op threads set to ``n`` inside the block (None: unchanged), then restored."""
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def field_errors(field: str) -> Iterator[None]:
    """Tag a ``ValueError`` / ``TypeError`` raised inside the block with the config field it
    is about (``exc.field``), so the command line names the option without reading the message.
    An exception already tagged keeps its field."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        if getattr(exc, "field", None) is None:
            exc.field = field
        raise


def run_study(
    study: Study,
    *,
    out=None,
    progress: bool | None = None,
    threads: int | None = 1,
    writer=None,
    outputs: bool = True,
    mode: str = "overwrite",
) -> Any:
    """Run ``study`` with the shared lifecycle (see the module docstring).

    Parameters
    ----------
    study : Study
    out : str or Path, optional
        Folder for ``results.h5`` and the study's figures. Ignored for the file when
        ``writer`` is given (figures go beside the writer's file).
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    threads : int or None
        BLAS threads (and torch threads for torch studies) while running; None leaves them.
    writer : ResultsWriter, optional
        An open writer to add the runs to; it is neither opened nor closed here.
    outputs : bool
        Call :meth:`Study.save_outputs` (figures, tables) after a successful run.
    mode : {"overwrite", "new", "resume"}
        What to do with an existing ``out/results.h5``: replace it, refuse it
        (:class:`FileExistsError` before any training; the command line's default, lifted by
        ``--overwrite``), or continue it (``--resume``: the file must hold this study's kind
        and config, else :class:`~synapse_sim.results.store.ResumeMismatchError`; a study
        that stores checkpoints continues each run from its last finished epoch, bit for bit;
        a file closed complete is refused). See :class:`~synapse_sim.results.ResultsWriter`.

    Returns
    -------
    object
        What :meth:`Study.execute` returns. When it has a ``path`` attribute, it is set to the
        results file.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    study.prepare()
    own = writer is None and out is not None
    if own:
        from ..results.store import ResultsWriter

        writer = ResultsWriter(
            Path(out) / "results.h5",
            study.results_config(),
            seed=int(study.seed),
            kind=study.kind,
            mode=mode,
            check_config=mode == "resume",
        )
        if writer.resumed_complete:  # (nothing written: the file stays as it is)
            raise FileExistsError(
                f"cannot resume {str(writer.path)!r}: the run finished (the file is complete); "
                "nothing to resume (use --overwrite to run it again)"
            )
    ctx = RunContext(writer=writer, progress=bool(progress))
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(blas_threads(threads))
            if study.uses_torch:
                stack.enter_context(torch_threads(threads))
            result = study.execute(ctx)
    except BaseException:
        if own:
            writer.close(complete=False)
        raise
    if own:
        writer.close(complete=True)
    if writer is not None:
        if hasattr(result, "path"):
            result.path = writer.path
        if outputs:
            study.save_outputs(result, Path(out) if out is not None else writer.path.parent)
    return result
