"""Running a sweep: the missing runs of the plan, each added to ``sweep.h5`` as it finishes."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devices import backends

from ..results.store import ResultsWriter, ResumeMismatchError, check_writable
from ..studies.base import progress_bar
from .executors import run_dask, run_processes, run_serial
from .spec import as_spec, check_gpus, gpu_worker_env


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    path : Path
        ``sweep.h5``.
    ran : int
        Runs trained by this call.
    skipped : int
        Runs already in the file (``resume=True``).
    complete : bool
        Every planned run is in the file.
    elapsed : float
        Wall time in seconds.
    """

    path: Path
    ran: int
    skipped: int
    complete: bool
    elapsed: float


def run_sweep(
    spec,
    out,
    *,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    client=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    backend: str | None = None,
    gpus=None,
) -> SweepResult:
    """Run a sweep and write ``out/sweep.h5``.

    Parameters
    ----------
    spec : SweepSpec, dict or path of a TOML file
    out : str or Path
        Output folder (created).
    workers : int, optional
        Worker processes (``processes`` executor, or the workers of a new Dask LocalCluster);
        default 1, or one per GPU with ``gpus``.
    executor : {"serial", "processes", "dask"}, optional
        Default: ``dask`` when ``scheduler`` or ``client`` is given, ``processes`` when
        ``workers > 1``, else ``serial``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``).
    client : distributed.Client, optional
        Use this Dask client (e.g. of a LocalCluster made in a notebook).
    resume : bool
        Keep the runs already in ``sweep.h5`` (which must come from the same spec) and run
        only the missing ones.
    overwrite : bool
        Replace an existing ``sweep.h5`` (otherwise an existing file is an error unless
        ``resume``).
    progress : bool, optional
        tqdm bar over points (default: when stderr is a terminal).
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}, optional
        Array backend of every run; replaces the spec's ``train.backend``. Not part of the
        plan: a sweep may be resumed on another backend (each run records its own).
    gpus : sequence of int, optional
        Pin the local worker processes to these GPUs (replaces the spec's ``sweep.gpus``):
        worker ``k`` gets ``CUDA_VISIBLE_DEVICES=gpus[k % len(gpus)]``
        (:func:`gpu_worker_env`). Needs backend ``cupy`` (``cuda-sim`` for tests) and the
        ``processes`` executor (the default with ``gpus``).

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        Bad spec or arguments, an existing file without ``resume``/``overwrite``, a file
        from another spec with ``resume``, or a backend that cannot run here (checked before
        anything is written, except with a Dask ``scheduler``/``client``: their workers may
        have GPUs this process has not).
    RuntimeError
        A run failed (the finished runs stay in the file; fix and resume).

    Notes
    -----
    The ``processes`` and ``dask`` executors start fresh (spawned) worker processes with one
    numba/BLAS thread each (:data:`THREAD_ENV`); as with any spawned process, a script that
    calls this must guard its entry point with ``if __name__ == "__main__":``.
    """
    t0 = time.perf_counter()
    spec = as_spec(spec)
    if spec.study != "train" and (backend is not None or gpus is not None):
        raise ValueError(
            f"backend and gpus choose where training runs; a {spec.study!r} sweep runs on the "
            f"CPU, got backend={backend!r}, gpus={gpus!r}"
        )
    if backend is not None:
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, backend=backend))
    gpus = check_gpus("gpus", gpus) if gpus is not None else spec.gpus
    if workers is None:
        workers = len(gpus) if gpus else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    remote = scheduler is not None or client is not None
    if executor is None:
        executor = "dask" if remote else ("processes" if workers > 1 or gpus else "serial")
    runners = {"serial": run_serial, "processes": run_processes, "dask": run_dask}
    if executor not in runners:
        raise ValueError(f"executor must be one of {', '.join(runners)}, got {executor!r}")
    if gpus:
        if executor != "processes":
            raise ValueError(
                f"gpus pins local worker processes to GPUs (executor 'processes'), got executor "
                f"{executor!r}; for Dask on several GPUs start dask-cuda's LocalCUDACluster and "
                "pass its client or scheduler address (docs/GPU.md)"
            )
        if spec.train.backend not in backends.CUDA_KERNEL_BACKENDS:
            raise ValueError(
                f"gpus needs backend 'cupy' (train.backend or --backend), got "
                f"{spec.train.backend!r}"
            )
        gpu_worker_env(gpus, workers)  # workers >= len(gpus)
    if not remote and spec.study == "train":
        from ..studies.train import resolve_backend

        resolve_backend(spec.train.backend)  # e.g. no GPU here: say so before writing
    out = Path(out)
    path = out / "sweep.h5"
    if path.exists() and not resume and not overwrite:
        raise ValueError(
            f"'{path}' exists; use --resume to finish it or --overwrite to start again"
        )
    check_writable(path)  # a read-only --out fails now, not after the first run
    tasks = spec.tasks()
    config = {
        "name": spec.name,
        "spec": spec.raw,
        "source": spec.source,
        "train": spec.train.to_dict(),
        "run": spec.run,
        "axes": {k: list(v) for k, v in spec.axes.items()},
        "axis_names": list(spec.axes),
        "device_seeds": list(spec.device_seeds),
        "software": spec.software,
        "save_weights": spec.save_weights,
        "backend": getattr(spec.train, "backend", None),
        "gpus": list(gpus) if gpus else None,
        "points": spec.points(),
        "labels": [t.label for t in tasks],
        "plan_hash": spec.plan_hash(),
    }
    if spec.study != "train":
        config["study"] = spec.study  # train files keep their layout
    labels = {t.label for t in tasks}
    writer = None
    done: set[str] = set()
    if resume and path.exists():
        writer = _open_writer(path, config, spec, tasks, "resume")
        done = set(writer.completed) & labels
    todo = [t for t in tasks if t.label not in done]
    skipped = len(tasks) - len(todo)
    if progress is None:
        progress = sys.stderr.isatty()
    # the bar counts points (the software twin is one); a point is done with its last instance
    key = {t.label: ("software" if t.point is None else t.point) for t in tasks}
    left: dict = {}
    for t in todo:
        left[key[t.label]] = left.get(key[t.label], 0) + 1
    n_keys = len(set(key.values()))
    bar = progress_bar(
        total=n_keys,
        initial=n_keys - len(left),
        desc=f"sweep {spec.name}",
        unit="point",
        disable=not progress,
        leave=False,
    )
    ran = 0
    try:
        for result in runners[executor](
            todo, workers=workers, scheduler=scheduler, client=client, gpus=gpus
        ):
            if writer is None:  # the file appears with the first finished run, never empty
                writer = _open_writer(path, config, spec, tasks, "overwrite")
            _add_result(writer, result, {t.label: t for t in tasks}[result["label"]])
            done.add(result["label"])
            ran += 1
            k = key[result["label"]]
            left[k] -= 1
            if left[k] == 0:
                bar.update(1)
    except (KeyboardInterrupt, ImportError):
        raise
    except Exception as exc:
        raise RuntimeError(
            f"sweep stopped after {ran} of {len(todo)} runs ({type(exc).__name__}: {exc}); "
            f"finished runs are in '{path}': fix the cause and run again with resume"
        ) from exc
    finally:
        bar.close()
    complete = done >= labels
    if writer is None:  # nothing ran and nothing was there (an empty plan)
        writer = _open_writer(path, config, spec, tasks, "overwrite")
    writer.close(complete=complete)
    return SweepResult(path, ran, skipped, complete, time.perf_counter() - t0)


def _open_writer(path, config, spec, tasks, mode) -> ResultsWriter:
    """The sweep file's :class:`ResultsWriter` (runs sorted by label, the plan in its attrs)."""
    try:
        return ResultsWriter(
            path,
            config,
            int(spec.train.seed),
            kind="sweep",
            mode=mode,
            attrs={"plan_hash": config["plan_hash"], "n_runs": len(tasks)},
            run_order="name",
        )
    except ResumeMismatchError as exc:
        if exc.key == "kind":
            raise ValueError(f"--resume: '{path}' is not a sweep file ({exc})") from None
        raise ValueError(
            f"--resume: '{path}' was written for a different spec (its runs differ from this "
            "spec's); use a new --out folder or --overwrite"
        ) from None


def _add_result(writer: ResultsWriter, result: dict, task) -> None:
    """Add one finished run (what :func:`run_task` returned) to the sweep file, atomically."""
    if task.study != "train":
        seed = task.train["seed"]
        extra = {
            "point": task.point,
            "instance": task.instance,
            "params": task.params,
            "seed": seed,
            "device_seed": seed,
            "overrides": task.train["overrides"],
            "study": task.study,
            "train": task.train,
        }
        ds = seed
    else:
        extra = _train_extra(task, result)
        ds = task.train["device_seed"]
    writer.write_run(
        task.label,
        device=result["device"],
        rule=result["rule"],
        dataset=result["dataset"],
        epochs=result["epochs"],
        history=result["history"],
        final=result["final"],
        weights=result.get("weights"),
        config=extra,
        attrs={
            "point": -1 if task.point is None else task.point,
            "instance": -1 if task.instance is None else task.instance,
            "params": json.dumps(task.params, sort_keys=True),
            "device_seed": -1 if ds is None else ds,
        },
    )


def _train_extra(task, result) -> dict:
    """The run config of a training run in the sweep file."""
    extra = {
        "point": task.point,
        "instance": task.instance,
        "params": task.params,
        "seed": task.train["seed"],
        "device_seed": task.train["device_seed"],
        "mapping": task.run["mapping"],
        "overrides": task.run["overrides"],
        "rule_options": task.run["rule_options"],
        "train": task.train,
        "backend": result.get("backend"),
    }
    if result.get("cuda_visible_devices") is not None:
        extra["cuda_visible_devices"] = result["cuda_visible_devices"]
    return extra
