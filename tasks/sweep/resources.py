"""Where a sweep's trials run: the task runner, and the GPUs each trial asks it for."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

RunnerKind = Literal["default", "dask", "ray"]


@contextlib.contextmanager
def trial_resources(gpus: int) -> Iterator[None]:
    """Ask a Ray or Dask task runner for ``gpus`` GPUs per submitted task (no-op otherwise)."""
    with contextlib.ExitStack() as stack:
        if gpus:
            # prefect-ray reads remote_options, prefect-dask reads dask annotations, when a
            # task is submitted; both are optional extras (.[ray], .[dask]).
            with contextlib.suppress(ImportError):
                from prefect_ray.context import remote_options

                stack.enter_context(remote_options(num_gpus=gpus))
            with contextlib.suppress(ImportError):
                import dask

                stack.enter_context(dask.annotate(resources={"GPU": gpus}))
        yield


def make_task_runner(kind: RunnerKind, address: str | None = None, workers: int = 2) -> Any | None:
    """The Prefect task runner for ``kind``: None keeps the flow's default thread pool.

    Without an address, Dask starts a ``distributed.LocalCluster`` of ``workers`` processes
    (one thread each: a trial is one training child process) and Ray a local instance of
    ``workers`` CPUs, unless RAY_ADDRESS names a running one (``ray.init`` reads it).
    """
    if not 1 <= workers <= 256:
        raise ValueError(f"local workers must be between 1 and 256, not {workers}")
    if address and kind != "dask":
        raise ValueError("--dask-address needs --task-runner dask")
    if kind == "default":
        return None
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    from prefect_ray import RayTaskRunner

    if os.environ.get("RAY_ADDRESS"):
        # A running Ray cluster: ray.init reads RAY_ADDRESS and takes no resource counts.
        return RayTaskRunner()
    return RayTaskRunner(init_kwargs={"num_cpus": workers, "include_dashboard": False})
