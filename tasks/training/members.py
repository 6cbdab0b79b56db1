"""An ensemble's members as trainings: one config per member, each member's refit, and which
members train together as one vectorised program (the JAX backend).

Kept apart from ``tasks.training.ensemble`` (which imports Prefect and trains) so that ``bikeflow
plan`` derives the members' cache keys and groups from the config as the flow does, without
Prefect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas.config import TrainingConfig
from tasks.storage.descriptors import BestEpoch

# Member i trains with seed + 1000 * i (wrapped into the seed's range).
MEMBER_SEED_STRIDE = 1000
SEED_LIMIT = 2**31 - 1


def member_trainings(training: TrainingConfig) -> list[TrainingConfig]:
    """One training config per member: the seed stepped by 1000, ensemble fields at 1/off."""
    return [
        training.model_copy(
            update={
                "seed": (training.seed + MEMBER_SEED_STRIDE * index) % SEED_LIMIT,
                "ensemble_size": 1,
                "refit": False,
                "parallel_members": TrainingConfig.model_fields["parallel_members"].default,
            }
        )
        for index in range(training.ensemble_size)
    ]


def refit_training(training: TrainingConfig, best: BestEpoch) -> TrainingConfig:
    """A member's refit: same seed and settings, for the epoch count validation chose."""
    return training.model_copy(update={"epochs": best.epoch})


# What may differ between the members of one group: the seed, and the epoch count (a refit's
# members each stop at the epoch their validation chose; the vectorised program runs the
# longest and each member keeps its own epochs).
GROUP_MAY_DIFFER = frozenset({"seed", "epochs"})


def member_groups(trainings: Sequence[TrainingConfig]) -> list[tuple[int, ...]]:
    """The trainings that train together, as index tuples in first-member order.

    On JAX, members whose trainings agree in everything but ``GROUP_MAY_DIFFER`` form one
    group (one child, one ``jax.vmap`` program); on TensorFlow each member is a group of its
    own, one child process each, as always. A group of one is a plain ``train_model``.
    """
    groups: dict[str, list[int]] = {}
    for index, training in enumerate(trainings):
        if training.backend == "jax":
            shared = training.model_dump(mode="json", exclude=set(GROUP_MAY_DIFFER))
            key = json.dumps(shared, sort_keys=True)
        else:
            key = f"alone {index}"
        groups.setdefault(key, []).append(index)
    return [tuple(indices) for indices in groups.values()]
