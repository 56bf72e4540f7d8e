"""What a :func:`~synapse_sim.studies.train.train` run returns and writes after its loop.

:class:`TrainResult`, the final record of a run in ``results.h5`` (:func:`write_final`), and the
report of a results file in the train layout: :func:`markdown_report` (``results.md``, also for
``synapse-sim show``) and :func:`save_report` (figures and ``results.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import compat
from .energy import energy_table

__all__ = ["TrainResult", "write_final", "markdown_report", "save_report"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : dict
        ``label -> {metric: list per epoch}``.
    final : dict
        ``label -> dict`` of final statistics.
    weights : dict
        ``label -> list`` of final weight matrices (numpy arrays, also for the GPU backend).
    arrays : dict
        ``label -> list`` of the trained weight arrays (device arrays or float weights).
    path : Path or None
        The results file, if one was written.
    table : str
        The markdown table of ``results.md`` (when the report was written).
    files : list of Path
        Files written (results file, figures, ``results.md``).
    """

    history: dict
    final: dict
    weights: dict
    arrays: dict
    path: Path | None = None
    table: str = ""
    files: list = field(default_factory=list)


def write_final(writer, label: str, final: dict, weights: list, save_weights: bool, biases=()):
    """Final statistics (and, when ``save_weights``, the weight matrices as ``layer<i>`` and
    any ``biases`` as ``bias<i>``) of run ``label``, which is then marked complete."""
    w = {f"layer{i}": W for i, W in enumerate(weights)} if save_weights else None
    w = w if w is None else {**w, **{f"bias{i}": b for i, b in enumerate(biases)}}
    writer.set_final(label, final, weights=w)
    writer.mark_complete(label)


def markdown_report(results_path) -> str:
    """Markdown table of a results file in the train layout (one row per configuration)."""
    from ..results.store import format_table, read_results, summary_records

    res = read_results(results_path)
    recs = summary_records(res)
    cfg = res["config"].get("train", {})
    head = (
        f"Dataset `{cfg.get('dataset')}`, network {res['config'].get('sizes')}, "
        f"{compat.schedule_words(cfg)}, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}, "
        f"seed {res['seed']}.\n\n"
    )
    return head + format_table(recs) + "\n" + _energy_section(res)


def _energy_section(res) -> str:
    """The energy table of a file whose runs recorded energy ("" otherwise)."""
    table = energy_table(res)
    return "\n" + table + "\n" if table else ""


def save_report(result: TrainResult, out: Path, *, plots: bool = True) -> list[Path]:
    """Write the PNG figures (``plots``) and ``results.md`` of a train-layout result into
    ``out``; return the paths written (the results file first) and keep them in
    ``result.files``."""
    from ..results.plots import save_run_plots

    files = [result.path]
    if plots:
        files += save_run_plots(result, out)
    table = markdown_report(result.path)
    (Path(out) / "results.md").write_text(table)
    files.append(Path(out) / "results.md")
    result.table = table
    result.files = files
    return files
