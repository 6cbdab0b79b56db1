"""An ensemble's members as trainings: one config per member, and each member's refit.

Kept apart from ``tasks.training.ensemble`` (which imports Prefect and trains) so that ``bikeflow
plan`` derives the members' cache keys from the config as the flow does, without Prefect.
"""

from __future__ import annotations

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
