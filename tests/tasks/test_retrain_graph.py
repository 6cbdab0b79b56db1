"""The retrain graph is the flow: its steps are exactly the tasks that ``retrain`` (with its
``prepare_data`` subflow and the members' wiring) calls, in the order it calls them, and the
skip rule is the one the flow applies."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prefect import Flow, Task

from flows.retrain import retrain
from tasks import retrain_graph as graph

PROJECT_PACKAGES = ("flows.", "tasks.", "schemas.")


@pytest.mark.parametrize("step", graph.ALL_STEPS, ids=[step.name for step in graph.ALL_STEPS])
def test_each_step_is_the_prefect_task_named_as_the_step(step: graph.Step):
    task = getattr(importlib.import_module(step.module), step.function)
    assert isinstance(task, Task)
    assert task.name == step.name
    assert task.fn.__module__ == step.module
    # Cached means a cross-run cache key; the other steps run in every run.
    has_key = type(task.cache_policy).__name__ in ("ArtifactCache", "SourceFingerprint")
    assert step.cached is has_key


def _resolve(name: str, function: Callable[..., Any], tree: ast.AST) -> Any:
    """What a called name means inside ``function``: a global, or an import in its body."""
    if name in function.__globals__:
        return function.__globals__[name]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return getattr(importlib.import_module(node.module), alias.name)
    return None


def _called(function: Callable[..., Any]) -> Iterator[Any]:
    """Every object ``function`` calls by name (``f(...)``, ``f.submit(...)``), in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    for call in sorted(calls, key=lambda node: (node.lineno, node.col_offset)):
        target = call.func
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            target = target.value  # task.submit(...)
        if isinstance(target, ast.Name):
            yield _resolve(target.id, function, tree)


def tasks_in_call_order(function: Callable[..., Any], seen: set[Any] | None = None) -> list[Task]:
    """The tasks ``function`` runs, following subflows and the project's own helpers."""
    seen = set() if seen is None else seen
    found: list[Task] = []
    for called in _called(function):
        if called is None or id(called) in seen:
            continue
        seen.add(id(called))
        if isinstance(called, Task):
            found.append(called)
        elif isinstance(called, Flow):
            found += tasks_in_call_order(called.fn, seen)
        elif inspect.isfunction(called) and called.__module__.startswith(PROJECT_PACKAGES):
            found += tasks_in_call_order(called, seen)
    return found


def test_the_graph_is_exactly_the_tasks_the_retrain_flow_runs_in_order():
    ran = [
        (task.fn.__module__, task.fn.__name__, task.name)
        for task in tasks_in_call_order(retrain.fn)
    ]
    stated = [(step.module, step.function, step.name) for step in graph.ALL_STEPS]
    assert sorted(ran) == sorted(stated)
    # The report of a skipped run is written just after the new-data check, before training.
    full_run = [entry for entry in ran if entry[2] != graph.REPORT_NO_NEW_DATA.name]
    assert full_run == [(step.module, step.function, step.name) for step in graph.RETRAIN_STEPS]


def test_the_prepare_steps_are_the_prepare_data_subflows():
    from flows.prepare import prepare_data

    ran = {task.name for task in tasks_in_call_order(prepare_data.fn)}
    assert ran == {step.name for step in graph.RETRAIN_STEPS if step.flow == "prepare_data"}


def test_the_retrain_flow_applies_the_graphs_skip_rule():
    assert graph.skips_training in list(_called(retrain.fn))
    source = inspect.getsource(retrain.fn)
    assert "retrain_when ==" not in source  # the rule is stated once, in the graph


@pytest.mark.parametrize(
    ("retrain_when", "has_champion", "new_rows", "skips"),
    [
        ("new-data", True, 0, True),
        ("new-data", True, 5, False),
        ("new-data", False, 0, False),
        ("always", True, 0, False),
    ],
)
def test_training_is_skipped_only_without_new_rows_after_a_champion(
    retrain_when: str, has_champion: bool, new_rows: int, skips: bool
):
    assert graph.skips_training(retrain_when, has_champion, new_rows) is skips


def test_the_skippable_steps_are_the_training_and_what_uses_its_model():
    after_check = graph.RETRAIN_STEPS[graph.RETRAIN_STEPS.index(graph.CHECK_NEW_DATA) + 1 :]
    assert after_check == graph.SKIPPABLE_STEPS
