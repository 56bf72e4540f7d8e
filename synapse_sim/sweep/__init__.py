"""Device-variability sweeps: Monte Carlo over device instances and parameters.

Modules: :mod:`.spec` (the spec and its plan), :mod:`.axes` (ranges, limits, spec errors),
:mod:`.kinds` (the ``bars`` and ``lca`` study kinds), :mod:`.executors` (serial, local
processes, Dask), :mod:`.run` (:func:`run_sweep`, resume), :mod:`.aggregate` (records,
tables), :mod:`.plots`.

A sweep spec (a TOML file or a dict) names a base experiment (:class:`TrainConfig` fields), the
fixed parts of every device run (preset, rule, mapping, fixed overrides), the **axes** (any
device or variability parameter, the preset, the rule, or a training field, each as a list or a
range) and the number of random device **instances** per point. :func:`expand` turns it into the
grid product of the axes; every point x instance is one training run of one device configuration
on the base experiment, and the software twin is trained once per sweep as a reference.

:func:`run_sweep` runs the missing runs serially, on local processes
(:class:`concurrent.futures.ProcessPoolExecutor`) or on Dask distributed (a ``LocalCluster`` or
an existing scheduler), and writes one crash-safe HDF5 file, ``sweep.h5`` (layout in
``docs/results-format.md``). Only the calling process writes; each finished run is added by
writing a complete snapshot with :class:`synapse_sim.ResultsWriter` (a new temporary file,
fsynced and renamed onto ``sweep.h5``), so a
crash (even ``kill -9``) never corrupts finished runs, and ``resume=True`` runs only what is
missing. Every run takes its seeds from the spec, so results do not depend on the executor, the
worker or the order of execution.

:func:`sweep_records`, :func:`aggregate` and :func:`format_sweep_table` read the file back;
plots are in :mod:`synapse_sim.sweep.plots`.

Spec format
-----------
.. code-block:: toml

    [sweep]                 # optional
    name = "d2d_levels"
    instances = 3           # device instances per point: device_seed = first_device_seed + k
    first_device_seed = 0   # (or device_seeds = [11, 12, 13])
    software = true         # train the software twin once as a reference
    save_weights = false

    [train]                 # the base experiment: TrainConfig fields
    dataset = "digits"
    hidden = [16]
    epochs = 2
    max_train = 400

    [run]                   # fixed parts of every device run
    device = "ag_a_si"
    rule = "bidirectional"
    overrides = { c2c_sigma = 0.0 }

    [axes]                  # grid product of the axes
    sigma_nl = { start = 0.0, stop = 2.0, num = 3 }      # linear range, both ends included
    "levels_ltp+levels_ltd" = [16, 32, 64]               # one axis setting both parameters
    # seed = [0, 1, 2]      # the training seed (initial weights, data order) as an axis: each
                            # point x instance pairs one training seed with one device seed

Sparse-coding sweeps
--------------------
``study = "bars"`` in ``[sweep]`` makes every run a bars test of sparse coding
(:class:`~synapse_sim.studies.bars.BarsConfig`, base fields in ``[bars]``) and
``study = "lca"`` an LCA measurement on a device array
(:class:`~synapse_sim.studies.lca_device.LCAConfig`, ``[lca]``); axes are config fields or
device parameters, instance ``k`` sets the config's ``seed``, and the aggregated metrics are the
recovered bars (``bars``) or the code error (``lca``). Same executors, file and resume
(:mod:`.kinds`; ``examples/sparse_device_sweep/``):

.. code-block:: toml

    [sweep]
    study = "bars"
    instances = 5                       # seeds 0..4 (data, initialization, device array)

    [bars]                              # BarsConfig fields
    model = "bsc"
    device = "ideal"
    overrides = { c2c_sigma = 0.0 }

    [axes]
    "levels_ltp+levels_ltd" = [16, 64, 256]
    rule = ["bidirectional", "unidirectional"]

GPUs
----
``train.backend = "cupy"`` (or ``run_sweep(backend="cupy")``, ``--backend cupy``) trains every
run on a GPU. ``gpus = [0, 1]`` in ``[sweep]`` (``run_sweep(gpus=...)``, ``--gpus 0,1``) runs
the runs on local worker processes pinned to those GPUs: worker ``k`` sees only GPU
``gpus[k % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES`` (:func:`gpu_worker_env`), one worker
per GPU unless ``workers`` asks for more. The backend says where runs train, not what they
compute: it is not part of the plan a resumed sweep must match, and it cannot be an axis. For
Dask on several GPUs use dask-cuda's ``LocalCUDACluster`` (``docs/GPU.md``).
"""

from .aggregate import aggregate, format_sweep_table, is_sweep_file, read_sweep, sweep_records
from .executors import THREAD_ENV, run_task
from .run import SweepResult, run_sweep
from .spec import SweepSpec, SweepTask, expand, gpu_worker_env, load_spec, parse_spec

__all__ = [
    "SweepSpec",
    "SweepTask",
    "SweepResult",
    "load_spec",
    "parse_spec",
    "expand",
    "run_sweep",
    "run_task",
    "read_sweep",
    "sweep_records",
    "aggregate",
    "format_sweep_table",
    "is_sweep_file",
    "gpu_worker_env",
    "THREAD_ENV",
]
