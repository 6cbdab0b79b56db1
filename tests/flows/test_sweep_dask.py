"""Sweeps on a real Dask cluster: same leaderboard, trials on workers, a killed worker, GPUs.

The scheduler runs in this process (a ``distributed.LocalCluster`` with no workers of its
own), and each worker is a ``dask worker --no-nanny`` process started here, as one would
start them on other hosts: so a worker killed with SIGKILL stays dead (a nanny would
restart it) and its trial can only finish on the other one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed", reason="the .[dask] extra is not installed")
pytest.importorskip("prefect_dask", reason="the .[dask] extra is not installed")

from prefect import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from flows.cli.main import main  # noqa: E402
from flows.sweep import sweep  # noqa: E402
from schemas.config import RetrainConfig, SplitConfig, TrainingConfig  # noqa: E402
from schemas.flow_configs import SweepConfig  # noqa: E402
from tests.flows.sweep_runs import (  # noqa: E402
    SEED,
    TRIALS,
    assert_same_scores,
    read_csv,
    sweep_flags,
)

pytestmark = [pytest.mark.slow, pytest.mark.minutes(4)]

ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """A scheduler in this process and named ``dask worker`` processes."""

    def __init__(self) -> None:
        self.local = distributed.LocalCluster(
            n_workers=0, processes=True, dashboard_address=None, scheduler_port=0
        )
        self.address: str = self.local.scheduler_address
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def add_worker(self, name: str, *options: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "distributed.cli.dask_worker", self.address]
        command += ["--no-nanny", "--nthreads", "1", "--name", name, "--no-dashboard", *options]
        # Its own session: killing the group kills the worker and its training child, as
        # when a host goes down.
        self.workers[name] = subprocess.Popen(
            command, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL
        )

    def addresses(self) -> dict[str, str]:
        """Worker name -> address, for the workers connected now."""
        info = self.local.scheduler_info["workers"]
        return {spec["name"]: address for address, spec in info.items()}

    def wait_for(self, count: int, timeout: float = 120) -> dict[str, str]:
        """Wait until ``count`` workers are connected."""
        deadline = time.monotonic() + timeout
        while len(self.addresses()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.addresses()} of {count} workers came up")
            time.sleep(0.2)
        return self.addresses()

    def close(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers.values():
            process.wait(timeout=60)
        self.local.close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Dask scheduler; each test adds its workers."""
    started = Cluster()
    try:
        yield started
    finally:
        started.close()


def test_a_dask_sweep_ranks_like_the_default_runner_and_records_its_workers(
    cluster: Cluster, reference_sweep: tuple[Path, Path], tmp_path: Path
):
    source, reference_dir = reference_sweep
    reference = read_csv(reference_dir / "trials.csv")
    cluster.add_worker("a")
    cluster.add_worker("b")
    workers = cluster.wait_for(2)
    # A store of its own: nothing is Cached from the default run, every trial trains here.
    flags = sweep_flags(tmp_path, source)
    assert main([*flags, "--task-runner", "dask", "--dask-address", cluster.address]) == 0

    trials = read_csv(tmp_path / "board" / "trials.csv")
    assert_same_scores(trials, reference)
    # Each trial trained on a worker of this cluster, and both took part.
    assert {t["worker"] for t in trials} == set(workers.values())
    assert {t["worker"] for t in reference} == {f"{socket.gethostname()}/pid {os.getpid()}"}
    ranked = read_csv(tmp_path / "board" / "leaderboard.csv")
    assert [r["label"] for r in ranked] == [
        r["label"] for r in read_csv(reference_dir / "leaderboard.csv")
    ]


def _train_trial_states(flow_run_id: Any, timeout: float = 60) -> list[str]:
    """The final states of the flow run's train_trial runs (states arrive as events)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            trained = [run for run in runs if run.name.startswith("train_trial")]
            if all(run.state is not None and run.state.is_final() for run in trained):
                return sorted(run.state_name or "" for run in trained)
            if time.monotonic() > deadline:
                return sorted(run.state_name or "" for run in trained)
            time.sleep(0.5)


def _training_child(worker: subprocess.Popen[bytes]) -> bool:
    import psutil

    try:
        children = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    return any("tasks.training.child" in " ".join(c.cmdline()) for c in children)


def test_a_worker_killed_mid_training_has_its_trial_rerun_on_the_other(
    cluster: Cluster, reference_sweep: tuple[Path, Path], tmp_path: Path
):
    source, reference_dir = reference_sweep
    reference = read_csv(reference_dir / "trials.csv")
    cluster.add_worker("victim")
    cluster.add_worker("survivor")
    workers = cluster.wait_for(2)
    killed: list[str] = []

    def kill_when_training() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if _training_child(cluster.workers["victim"]):
                os.killpg(cluster.workers["victim"].pid, signal.SIGKILL)
                killed.append(workers["victim"])
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_training, daemon=True)
    killer.start()
    base = RetrainConfig(
        source=str(source),
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=30),
        training=TrainingConfig(epochs=2, batch_size=16),
    )
    config = SweepConfig(
        base=base,
        trials=tuple({"name": n, "model": {"architecture": n}} for n in TRIALS.split(",")),
        seeds=(SEED,),
        leaderboard_dir=str(tmp_path / "board"),
    )
    state = sweep.with_options(task_runner=DaskTaskRunner(address=cluster.address))(
        config, return_state=True
    )
    killer.join(timeout=10)
    assert killed == [workers["victim"]], "the victim never started a training"
    assert cluster.workers["victim"].wait(timeout=30) == -signal.SIGKILL
    assert state.is_completed(), state.message
    board: Any = state.result()
    # Dask's scheduler saw the worker die and ran its trial again on the survivor.
    assert {t.worker for t in board.trials} == {workers["survivor"]}
    # Under the same Prefect task run id: one Completed train_trial run per trial.
    assert _train_trial_states(state.state_details.flow_run_id) == ["Completed", "Completed"]
    trials = read_csv(tmp_path / "board" / "trials.csv")
    assert_same_scores(trials, reference)


def test_the_gpu_request_reaches_the_scheduler_and_picks_the_gpu_worker(
    cluster: Cluster, reference_sweep: tuple[Path, Path], tmp_path: Path
):
    from distributed.diagnostics.plugin import SchedulerPlugin

    source, reference_dir = reference_sweep
    reference = read_csv(reference_dir / "trials.csv")
    seen: dict[str, dict[str, float] | None] = {}

    class Restrictions(SchedulerPlugin):
        """Records the resource restrictions of every task the scheduler is given."""

        def __init__(self, scheduler: Any) -> None:
            self.scheduler = scheduler

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any):
            task = self.scheduler.tasks.get(key)
            if task is not None and start == "released":
                seen[str(key)] = task.resource_restrictions

    cluster.local.scheduler.add_plugin(Restrictions(cluster.local.scheduler))
    cluster.add_worker("gpu", "--resources", "GPU=1")
    cluster.add_worker("cpu")
    workers = cluster.wait_for(2)
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text("gpus_per_trial: 1\n")
    flags = [*sweep_flags(tmp_path, source), "--sweep-file", str(sweep_file)]
    assert main([*flags, "--task-runner", "dask", "--dask-address", cluster.address]) == 0

    trainings = {k: v for k, v in seen.items() if "train_trial" in k}
    assert len(trainings) == 2 and all(v == {"GPU": 1} for v in trainings.values()), seen
    trials = read_csv(tmp_path / "board" / "trials.csv")
    assert {t["worker"] for t in trials} == {workers["gpu"]}  # never on the worker without
    assert_same_scores(trials, reference)
