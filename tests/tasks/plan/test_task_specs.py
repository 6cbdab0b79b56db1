"""Plan reads each cached task of the retrain flow from its source; what it reads is the task:
its name, its parameters, its cache policy, and so the very key material the policy builds."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks import retrain_graph as graph
from tasks.plan.task_specs import task_spec

# Every cached step of the retrain flow (tests/tasks/test_retrain_graph.py: the graph is the flow).
RETRAIN_STEPS = [(step.module, step.function) for step in graph.RETRAIN_STEPS if step.cached]


@pytest.mark.parametrize(("module", "function"), RETRAIN_STEPS, ids=[f for _, f in RETRAIN_STEPS])
def test_the_spec_read_from_source_is_the_imported_task(module: str, function: str, tmp_path: Path):
    spec = task_spec(module, function)
    task = getattr(importlib.import_module(module), function)
    assert spec.name == task.name
    assert spec.parameters == tuple(inspect.signature(task.fn).parameters)
    assert spec.policy == type(task.cache_policy).__name__
    assert spec.modules == task.cache_policy.modules
    assert spec.libraries == task.cache_policy.libraries

    # Any inputs: the plan's key material is the policy's, byte for byte.
    day_csv = tmp_path / "day.csv"
    day_csv.write_bytes(to_csv_bytes(make_day_frame(30, seed=3)))
    inputs = {name: f"{name}-value" for name in spec.parameters}
    inputs |= {"source": str(day_csv), "store_root": str(tmp_path / "store")}
    inputs = {name: value for name, value in inputs.items() if name in spec.parameters}
    args = tuple(inputs[name] for name in spec.parameters)
    material = spec.key_material(spec.bind(args))
    assert material == task.cache_policy.key_material(task, inputs)
    # The versions of the libraries the policy names are part of it (a step may name none).
    assert material is not None and set(spec.libraries) <= set(material["libraries"])


def test_the_ingest_key_changes_with_the_source_and_is_absent_for_a_missing_one(tmp_path: Path):
    spec = task_spec("tasks.prepare.ingest", "ingest_source")
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(30, seed=3)))
    before = spec.key_material(spec.bind((str(source), str(tmp_path), "day.csv")))
    source.write_bytes(to_csv_bytes(make_day_frame(30, seed=4)))
    after = spec.key_material(spec.bind((str(source), str(tmp_path), "day.csv")))
    assert before is not None and after is not None and before["source"] != after["source"]
    missing = spec.bind((str(tmp_path / "gone.csv"), str(tmp_path), "day.csv"))
    assert spec.key_material(missing) is None


def test_a_call_with_the_wrong_arguments_is_a_bug_not_a_key():
    spec = task_spec("tasks.prepare.split", "split_by_date")
    with pytest.raises(TypeError, match="split_by_date takes 2 arguments"):
        spec.bind(("only one",))
    with pytest.raises(ValueError, match="no function 'nothing'"):
        task_spec("tasks.prepare.split", "nothing")
