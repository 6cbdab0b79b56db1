"""Spare training children (``child_process.start_spare``): a training takes the spare of its
backend, never another backend's, and ``discard_spares`` ends the ones nobody took."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.training import child_process
from tasks.training.child_process import discard_spares, run_child, start_spare

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_spares_left():
    yield
    discard_spares()


def _spare_pids(backend: str) -> list[int]:
    return [child.process.pid for child in child_process._spares.get(backend, [])]


def test_a_spare_nobody_takes_is_killed_and_another_backends_spare_is_not_taken():
    start_spare("tensorflow")
    spare = child_process._spares["tensorflow"][0].process
    events: list[dict[str, Any]] = []
    # A request the child refuses at once (not JSON): it came from a fresh child, not the
    # TensorFlow spare, which a JAX training must never take.
    outcome = run_child("not a request", 1.0, events.append, backend="jax")
    assert outcome.error is not None and outcome.code == 1
    assert "spare child" not in json.dumps(events)
    assert _spare_pids("tensorflow") == [spare.pid] and spare.poll() is None
    discard_spares()
    assert spare.poll() is not None and child_process._spares == {}


def test_a_training_takes_the_spare_of_its_backend():
    start_spare("jax")
    spare = child_process._spares["jax"][0].process
    events: list[dict[str, Any]] = []
    outcome = run_child("not a request", 1.0, events.append, backend="jax")
    # The spare read the request after its imports: it answered, and was used up.
    assert outcome.error is not None and outcome.code == 1
    assert spare.poll() == 1 and _spare_pids("jax") == []


def test_within_reusing_children_a_jax_child_serves_the_next_request_too():
    from tasks.training.child_process import reusing_children

    events: list[dict[str, Any]] = []
    with reusing_children():
        start_spare("jax")
        spare = child_process._spares["jax"][0].process
        # A bad request fails and ends its child: a failed child is never kept.
        assert run_child("not a request", 1.0, events.append, backend="jax").code == 1
        assert spare.poll() == 1 and child_process._idle == {}
    assert child_process._idle == {}
