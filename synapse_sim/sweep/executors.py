"""Where sweep runs execute: one run (:func:`run_task`), serially, on local processes, on Dask.

Security of the Dask executor: Dask sends tasks and results with pickle, so anyone who can reach
a scheduler can run code on its workers and clients. ``--dask`` (a LocalCluster) stays on this
machine. With ``--scheduler ADDR`` the client is made with Dask's default security, read from
Dask's configuration: a ``tls://`` address with the CA and the client certificate set there
(``distributed.comm.tls.*``, ``distributed.comm.require-encryption``; or pass
``client=Client(addr, security=Security(...))`` from Python) gives encrypted, mutually
authenticated connections. A plain ``tcp://`` scheduler belongs on a trusted network only.
``docs/DISTRIBUTED.md`` shows the whole set-up.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Mapping

import numpy as np

from devices import backends

from .kinds import run_config_task
from .spec import SweepTask, gpu_worker_env

#: Environment of a worker process that shares the machine with other workers: one thread for
#: numba and for every BLAS/OpenMP library (set before they are imported).
THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


# ---------------------------------------------------------------------------- one run
def _limit_threads() -> None:
    """One thread for numba and BLAS in this process (a worker among several)."""
    os.environ.update(THREAD_ENV)
    if "numba" in sys.modules:
        with contextlib.suppress(Exception):
            import numba

            numba.set_num_threads(1)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def run_task(task, limit_threads: bool = False) -> dict:
    """Run one run of a sweep (a training run, or a ``bars`` / ``lca`` run) and return its
    results as plain data.

    Runs in a worker process (or in the calling process for the serial executor). The result
    depends only on ``task``: every seed comes from the spec.

    Parameters
    ----------
    task : SweepTask or dict
    limit_threads : bool
        Use one numba/BLAS thread (several workers share the machine).

    Returns
    -------
    dict
        ``label``, ``history`` (metric -> list per epoch), ``final`` (final device
        statistics), ``weights`` (``layer<i>`` -> array, or None), ``device``, ``rule``,
        ``dataset``, ``epochs``, ``backend`` (resolved) and ``cuda_visible_devices`` (the
        worker's ``CUDA_VISIBLE_DEVICES`` for the CUDA backends, else None).
    """
    from ..studies.train import RunSpec, TrainConfig, resolve_backend, train

    if limit_threads:
        _limit_threads()
    if isinstance(task, SweepTask):
        task = task.to_dict()
    if task.get("study", "train") != "train":
        return run_config_task(task)
    config = TrainConfig(**task["train"])
    rs = RunSpec(**task["run"])
    backend = resolve_backend(config.backend)
    res = train(config, [rs], progress=False, blas_threads=1)
    label = rs.label
    weights = None
    if task.get("save_weights"):
        weights = {f"layer{i}": np.asarray(w) for i, w in enumerate(res.weights[label])}
    return {
        "label": task["label"],
        "history": {k: [float(v) for v in vs] for k, vs in res.history[label].items()},
        "final": res.final[label],
        "weights": weights,
        "device": rs.device_name,
        "rule": rs.rule,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "backend": backend,
        "cuda_visible_devices": (
            os.environ.get("CUDA_VISIBLE_DEVICES")
            if backend in backends.CUDA_KERNEL_BACKENDS
            else None
        ),
    }


# ---------------------------------------------------------------------------- executors
@contextlib.contextmanager
def _env(values: Mapping[str, str]):
    """Set environment variables for processes started inside the block, then restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_serial(todo, **_):
    for task in todo:
        yield run_task(task)


def exit_with_parent(poll: float = 1.0) -> threading.Thread:
    """Make this (spawned) process exit as soon as its parent process dies, even by ``kill -9``.

    A daemon thread waits on the parent's sentinel (readable when the parent is gone) or, where
    there is none, polls the parent pid every ``poll`` seconds, then ends this process at once
    (a worker that outlives its sweep holds hundreds of MB and finishes runs nobody reads).

    Returns
    -------
    threading.Thread
        The watching thread (already started).
    """
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    ppid = os.getppid()

    def watch() -> None:
        if parent is not None and parent.sentinel is not None:
            wait([parent.sentinel])
        else:  # pragma: no cover - not a multiprocessing child
            while os.getppid() == ppid:
                time.sleep(poll)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _init_worker(slots) -> None:
    """Initializer of a local worker: one numba/BLAS thread, and with ``slots`` (a queue of
    ``CUDA_VISIBLE_DEVICES`` values, one per worker) its own GPU, set before anything in this
    fresh process touches CUDA. The worker exits when its parent dies (:func:`exit_with_parent`).
    """
    exit_with_parent()
    _limit_threads()
    if slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.get(timeout=120)


def run_processes(todo, *, workers, gpus=None, fn=None, **_):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    fn = run_task if fn is None else fn
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: env set before imports
    slots = None
    if gpus:
        slots = ctx.Queue()
        for env in gpu_worker_env(gpus, workers):  # worker k takes the k-th value as it starts
            slots.put(env["CUDA_VISIBLE_DEVICES"])
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(slots,)
    )
    try:
        with _env(THREAD_ENV):  # workers are spawned (inheriting this env) by submit
            futures = [ex.submit(fn, t, True) for t in todo]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


_DASK_PRE_SPAWN = ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def run_dask(todo, *, workers, scheduler, client, **_):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError(
            "the Dask executor needs dask[distributed]: pip install 'synapse-sim[distributed]'"
        ) from None
    own = []
    try:
        if client is None:
            if scheduler is not None:
                client = Client(scheduler)
            else:
                # distributed sets its pre-spawn variables in this process too: put them back
                saved = {k: os.environ.get(k) for k in (*THREAD_ENV, *_DASK_PRE_SPAWN)}
                try:
                    cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        env=THREAD_ENV,
                        dashboard_address=None,
                    )
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                own.append(cluster)
                client = Client(cluster)
            own.insert(0, client)
        futures = [client.submit(run_task, t, True, pure=False) for t in todo]
        try:
            for fut in as_completed(futures):
                yield fut.result()
                fut.release()
        finally:
            client.cancel([f for f in futures if not f.done()])
    finally:
        for obj in own:
            with contextlib.suppress(Exception):
                obj.close()
