"""Feature encodings and target transforms: how raw columns become model inputs and targets.

The seed encodes categorical columns as one-hot vectors and keeps ordinal ones as integers.
The encoding is recorded in the statistics (``normalisation.json``), so it travels with the
model: new rows are encoded exactly the way the training rows were.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

# The categories of each one-hot column are the schema's domain, not the values seen in the
# training rows: a category absent from training (weathersit 4 in day.csv) still gets its
# column, so every later row encodes to the same width.
ONE_HOT_DOMAINS: dict[str, tuple[int, ...]] = {
    "season": (1, 2, 3, 4),
    "mnth": tuple(range(1, 13)),
    "weekday": tuple(range(7)),
    "weathersit": (1, 2, 3, 4),
}

TargetTransform = Literal["none", "log", "sqrt"]


class FeatureEncoding(BaseModel):
    """Which raw columns are expanded into indicator columns, and their categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ordinal", "one-hot"] = "ordinal"
    raw_names: tuple[str, ...] = ()
    categories: dict[str, tuple[int, ...]] = {}

    def encoded_names(self) -> tuple[str, ...]:
        """Names of the encoded columns, in order (a one-hot column becomes name=value)."""
        names: list[str] = []
        for name in self.raw_names:
            if name in self.categories:
                names += [f"{name}={value}" for value in self.categories[name]]
            else:
                names.append(name)
        return tuple(names)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Encode raw feature rows (columns in ``raw_names`` order) as float32."""
        if not self.categories:
            return np.asarray(raw)  # ordinal: the raw columns as they are
        if raw.shape[1] != len(self.raw_names):
            raise ValueError(f"expected {len(self.raw_names)} raw columns, got {raw.shape[1]}")
        parts: list[np.ndarray] = []
        for index, name in enumerate(self.raw_names):
            column = np.asarray(raw[:, index])
            if name in self.categories:
                values = np.asarray(self.categories[name], dtype=column.dtype)
                parts.append((column[:, None] == values[None, :]).astype(np.float32))
            else:
                parts.append(column[:, None].astype(np.float32))
        return np.hstack(parts)


def fit_encoding(
    kind: Literal["ordinal", "one-hot"], raw_names: tuple[str, ...]
) -> FeatureEncoding:
    """Build the encoding for the table's columns (one-hot: the known categorical columns)."""
    if kind == "ordinal":
        return FeatureEncoding(kind=kind, raw_names=raw_names)
    categories = {name: ONE_HOT_DOMAINS[name] for name in raw_names if name in ONE_HOT_DOMAINS}
    return FeatureEncoding(kind=kind, raw_names=raw_names, categories=categories)


def transform_target(target: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """Counts to the scale the model learns on (log: log(1 + cnt); sqrt: its square root)."""
    values = np.asarray(target, dtype=np.float64)
    if transform in ("log", "sqrt") and np.any(values < 0):
        raise ValueError(f"a {transform} target transform needs counts >= 0")
    if transform == "log":
        return np.log1p(values)
    if transform == "sqrt":
        return np.sqrt(values)
    return values


def invert_target(values: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """The model's scale back to counts (inverse of ``transform_target``)."""
    values = np.asarray(values, dtype=np.float64)
    if transform == "log":
        return np.expm1(values)
    if transform == "sqrt":
        # A negative prediction has no square root; clipping at 0 keeps counts >= 0.
        return np.square(np.maximum(values, 0.0))
    return values
