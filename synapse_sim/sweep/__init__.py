"""Variability sweeps: TOML specs, executors (serial / processes / Dask), resume, aggregation."""

from .core import (
    THREAD_ENV,
    SweepResult,
    SweepSpec,
    SweepTask,
    aggregate,
    expand,
    format_sweep_table,
    gpu_worker_env,
    is_sweep_file,
    load_spec,
    parse_spec,
    read_sweep,
    run_sweep,
    run_task,
    sweep_records,
)

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
