"""Which members train together, and the request a group's child reads: the one-member request
is unchanged (its JSON, its journal), a group's members share arrays, and each has a journal of
its own that no lone training shares. No training here (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.config import TrainingConfig
from tasks import retrain_graph as graph
from tasks.storage.descriptors import BestEpoch
from tasks.storage.store import FileRef
from tasks.training.members import member_groups, member_trainings, refit_training
from tasks.training.request import FitRequest, GroupFitRequest, read_request
from tests.tasks.training.test_resume import _request


def _group(root: Path, backend: str = "jax", members: int = 3) -> GroupFitRequest:
    one = _request(root, train_rows=40)
    training = one.training.model_copy(update={"backend": backend, "ensemble_size": members})
    return GroupFitRequest(
        data=one.data,
        model=one.model,
        trainings=tuple(member_trainings(training)),
        store_root=one.store_root,
    )


def _best(epoch: int) -> BestEpoch:
    model = FileRef(path="/nowhere/model.keras", sha256="0" * 64, size=1)
    return BestEpoch(epoch=epoch, val_loss=0.1, loss=0.1, model=model)


def test_the_one_member_request_reads_back_as_itself(tmp_path: Path):
    request = _request(tmp_path, train_rows=40)
    text = request.model_dump_json()
    assert "trainings" not in json.loads(text)
    again = read_request(text)
    assert isinstance(again, FitRequest) and again == request
    assert again.journal_name() == request.journal_name()


def test_a_group_reads_back_and_its_members_share_the_arrays(tmp_path: Path):
    group = _group(tmp_path)
    again = read_request(group.model_dump_json())
    assert isinstance(again, GroupFitRequest) and again == group
    jobs = group.jobs()
    assert [job.training.seed for job in jobs] == [11, 1011, 2011]
    for job in jobs[1:]:
        # One memory map for all: the vectorised program reads the rows once.
        assert job.x_train is jobs[0].x_train and job.y_validation is jobs[0].y_validation
    names = [job.journal.name for job in jobs if job.journal is not None]
    assert names == [group.journal_name(i) for i in range(3)]
    assert len(set(names)) == 3
    # A member in a group never resumes (or is resumed by) the same seed trained alone.
    assert not set(names) & {group.member(i).journal_name() for i in range(3)}


def test_a_groups_journals_ignore_the_timeout_but_not_the_epochs(tmp_path: Path):
    group = _group(tmp_path)

    def changed(**update: object) -> GroupFitRequest:
        trainings = tuple(t.model_copy(update=update) for t in group.trainings)
        return group.model_copy(update={"trainings": trainings})

    assert changed(timeout_minutes=600.0).journal_name(1) == group.journal_name(1)
    assert changed(epochs=9).journal_name(1) != group.journal_name(1)


def test_an_empty_group_is_refused(tmp_path: Path):
    group = _group(tmp_path)
    with pytest.raises(ValueError, match="trainings"):
        GroupFitRequest.model_validate({**group.model_dump(), "trainings": ()})


@pytest.mark.parametrize("members", [1, 2, 3])
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_jax_members_and_their_refits_form_one_group(backend: str, members: int):
    training = TrainingConfig(backend=backend, ensemble_size=members, refit=True)
    trainings = member_trainings(training)
    grouped = graph.uses_member_group(backend, members)
    expected = [tuple(range(members))] if grouped else [(i,) for i in range(members)]
    assert member_groups(trainings) == expected
    # Each refit stops at its own chosen epoch: they still train together.
    refits = [refit_training(t, _best(3 + i)) for i, t in enumerate(trainings)]
    assert member_groups(refits) == expected
    # Member 0 is the very training a one-member run of the same config does.
    alone = member_trainings(training.model_copy(update={"ensemble_size": 1}))
    assert trainings[0] == alone[0]


def test_trainings_that_differ_in_more_than_seed_and_epochs_train_apart():
    base = TrainingConfig(backend="jax")
    trainings = [
        base,
        base.model_copy(update={"seed": 5}),
        base.model_copy(update={"learning_rate": 0.05}),
    ]
    assert member_groups(trainings) == [(0, 1), (2,)]
