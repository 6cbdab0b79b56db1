"""The retrain flow: check paths -> prepare data (ingest -> validate -> split -> normalise) ->
check new data -> train members -> select -> (refit) -> assemble -> evaluate -> publish ->
promote. ``tasks/retrain_graph.py`` lists these steps and states the skip rule, once.

Tasks are called directly, or (the ensemble's members, like the sweep's trainings) submitted
and every future resolved with ``.result()`` before the flow goes on: a failing task raises
in the flow, so the flow run is Failed. (A submitted future that nobody resolves would let the
flow end Completed with a failed task inside; ``tests/flows/test_failure_visibility.py`` keeps
flows free of them.)
"""

from __future__ import annotations

from prefect import flow

from flows.prepare import prepare_data
from schemas.config import RetrainConfig
from tasks.error_logs import install_user_error_filter
from tasks.evaluation.evaluate import evaluate_model
from tasks.evaluation.publish import PromotionNote, RunSummary, publish_run
from tasks.preflight import check_paths
from tasks.promotion.new_data import check_new_data, report_no_new_data
from tasks.promotion.task import promote_model
from tasks.retrain_graph import skips_training
from tasks.training.child import keras_backend
from tasks.training.child_process import reusing_children
from tasks.training.ensemble import assemble_forecaster, train_members

# A user error is logged by Prefect with its message and no traceback (tasks/error_logs.py);
# installed on import so that it holds wherever this flow runs (CLI, Python, a worker).
install_user_error_filter()


@flow(name="retrain", result_serializer="json")
def retrain(config: RetrainConfig = RetrainConfig()) -> RunSummary:  # noqa: B008
    """Retrain the demand model, report on the test window, promote it if it beats the champion."""
    check_paths(config)
    prepared = prepare_data(config)
    table, plan, data = prepared.table, prepared.plan, prepared.data
    backend = keras_backend(config.model, config.training)
    # One training child serves the run (on JAX): it re-scores the champion, trains, then
    # assembles and predicts, so this process never imports Keras (tasks/training/keras_work.py).
    with reusing_children():
        new_data = check_new_data(config, table)
        if skips_training(config.retrain_when, bool(new_data.champion), new_data.new_rows):
            return report_no_new_data(config, new_data)
        # train_model + select_best_epoch per member (in parallel), refit_data + train_model
        # again (on JAX one train_member_group for the members, and one for their refits).
        members = train_members(data, config.model, config.training, config.store_root)
        model = assemble_forecaster(members, config.model, config.training, config.store_root)
        evaluation = evaluate_model(
            model.best, data, table, plan, config.store_root, model.model, backend
        )
        summary = publish_run(config, table, plan, data, model, evaluation, new_data)
        decision = promote_model(config, table, plan, data, model, evaluation)
    note = PromotionNote.model_validate(decision, from_attributes=True)
    return summary.model_copy(update={"promotion": note})
