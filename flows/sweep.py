"""The sweep flow: train a list/grid of configs x seeds in parallel, rank them on validation.

Wiring only: the trials (tasks/sweep/trials.py), the ranking and its files
(tasks/sweep/leaderboard.py) and the GPU requests (tasks/sweep/resources.py) live in their task
modules. The trainings are the only submitted tasks, so the flow's task runner (default thread
pool, Dask or Ray, set with ``sweep.with_options(task_runner=...)``) decides where they run;
everything else runs here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow
from prefect.futures import wait
from prefect.logging import get_run_logger

from flows.prepare import prepare_data
from schemas.errors import TrainingError
from schemas.flow_configs import SweepConfig
from tasks.error_logs import install_user_error_filter
from tasks.evaluation.evaluate import evaluate_model
from tasks.preflight import check_paths
from tasks.promotion.task import promote_model
from tasks.storage.descriptors import Evaluation, Member
from tasks.sweep.leaderboard import (
    Leaderboard,
    TrialResult,
    baseline_scores,
    collect_trial,
    diverged_trial,
    has_diverged,
    publish_leaderboard,
    rank_results,
    winner_index,
)
from tasks.sweep.resources import trial_resources
from tasks.sweep.trials import Trial, TrialRun, expand_trials, train_trial, trials_for_stations
from tasks.training.best_epoch import select_best_epoch
from tasks.training.child import keras_backend
from tasks.training.child_process import reusing_children
from tasks.training.ensemble import assemble_forecaster

__all__ = ["Leaderboard", "Trial", "TrialResult", "expand_trials", "rank_results", "sweep"]


# A user error is logged by Prefect with its message and no traceback (tasks/error_logs.py);
# installed on import so that it holds wherever this flow runs (CLI, Python, a worker).
install_user_error_filter()


def _in_batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@flow(name="sweep", result_serializer="json")
def sweep(config: SweepConfig = SweepConfig()) -> Leaderboard:  # noqa: B008
    """Train every trial config over several seeds in parallel and rank them on validation."""
    logger = get_run_logger()
    check_paths(config)
    trials = expand_trials(config)
    logger.info("sweep of %d trials (%d seeds each)", len(trials), len(config.seeds))
    # One normalisation per distinct feature config, shared (and cached) by its trials.
    features = tuple(dict.fromkeys(t.config.features for t in trials))
    prepared = prepare_data(config.base, features)
    if prepared.table.stations is not None:
        kept = trials_for_stations(trials, defaulted=not config.trials)
        if len(kept) < len(trials):
            logger.warning("the data has stations: tf-core (no station input) is left out")
        trials = kept
    data = [prepared.normalised[features.index(t.config.features)] for t in trials]

    trained: list[TrialRun] = []
    # Each training runs in its own child process (the JSON-lines trainer), at most
    # max_parallel submitted at once, on whichever worker the task runner picks.
    for batch in _in_batches(list(range(len(trials))), config.max_parallel):
        with trial_resources(config.gpus_per_trial):
            futures = [train_trial.submit(trials[i], data[i]) for i in batch]
        wait(futures)
        trained += [future.result() for future in futures]
    # One child on JAX predicts every trial's windows (tasks/training/keras_work.py).
    with reusing_children():
        results: list[TrialResult] = []
        evaluations: list[Evaluation | None] = []
        for trial, one, trial_data in zip(trials, trained, data, strict=True):
            if has_diverged(one.run):
                logger.warning(
                    "trial %s seed %d diverged (no finite val_loss)", trial.label, trial.seed
                )
                evaluations.append(None)
                results.append(diverged_trial(trial, one))
                continue
            best = select_best_epoch(one.run)
            backend = keras_backend(trial.config.model, trial.config.training)
            evaluation = evaluate_model(
                best,
                trial_data,
                prepared.table,
                prepared.plan,
                trial.config.store_root,
                backend=backend,
            )
            evaluations.append(evaluation)
            results.append(collect_trial(trial, one, best, evaluation))
        scored = [e for e in evaluations if e is not None]
        if not scored:
            raise TrainingError("every trial of the sweep diverged (try a lower learning_rate)")
        board = publish_leaderboard(results, baseline_scores(scored), config.leaderboard_dir)
        if config.promote_winner:
            # The winning config's best-validated seed goes to the registry's promotion step.
            index = winner_index(board, trials, evaluations)
            winning = evaluations[index]
            assert winning is not None  # winner_index only picks scored trials
            winner = trials[index]
            best = select_best_epoch(trained[index].run)
            member = Member(seed=winner.seed, run=trained[index].run, best=best)
            model = assemble_forecaster(
                [member], winner.config.model, winner.config.training, winner.config.store_root
            )
            promote_model(winner.config, prepared.table, prepared.plan, data[index], model, winning)
    return board
