"""Presets and zoo entries: the values they fill into the config fields a user did not give.

A preset is a YAML file of config fields under ``schemas/presets/``; a zoo entry is what one
architecture changes from the generic defaults. ``RetrainConfig`` (schemas/config.py) calls
``resolve_config`` before it validates its input.
"""

from __future__ import annotations

import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

PresetName = Literal["seed", "forecaster"]
PRESETS_DIR = Path(__file__).resolve().parent / "presets"

# What each zoo entry changes from the generic defaults (the seed's variants). It fills only
# the fields the user did not give (see ``resolve_config``).
ZOO_DEFAULTS: dict[str, dict[str, dict[str, object]]] = {
    "seed-mlp": {},
    # Keras' default Adam (the seed: optimizer='Adam'): rate 0.001, no decay.
    "adam": {"training": {"optimizer": "adam", "learning_rate": 0.001, "decay_rate": 1.0}},
    "dropout": {"model": {"dropout": 0.2}, "training": {"epochs": 50}},
    "leaky-relu": {"model": {"hidden_units": 6, "activation": "leaky_relu"}},
    "two-input": {},
    # Its second weather input is the day before's weather, derived from the rows.
    "shared-weather": {"features": {"previous_weather": True}},
    # The tutorial's hand-written TensorFlow loop: it has no other backend.
    "tf-core": {"training": {"backend": "tensorflow"}},
}


@cache
def preset_values(name: str) -> dict[str, Any]:
    """The fields a preset sets (``schemas/presets/<name>.yaml``)."""
    import yaml

    loaded = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"preset {name!r}: expected a mapping of config fields")
    return loaded


def _given(value: object) -> dict[str, Any]:
    """The fields actually given, nested: a model contributes its ``model_fields_set`` only."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if not isinstance(value, dict):
        return {}
    return {
        key: _given(item) if isinstance(item, dict | BaseModel) else item
        for key, item in value.items()
    }


def _fill(given: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``given`` with every leaf of ``values`` that it lacks added (given values always win)."""
    result = dict(given)
    for key, value in values.items():
        if isinstance(value, dict):
            result[key] = _fill(_given(result.get(key)), value)
        elif key not in result:
            result[key] = value
    return result


def _leaves(model: type[BaseModel]) -> dict[str, Any]:
    """Field name -> generic default, nested models as nested dicts."""
    leaves: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves[name] = _leaves(annotation)
        else:
            leaves[name] = info.default
    return leaves


def _is_complete(data: dict[str, Any], leaves: dict[str, Any]) -> bool:
    """Whether ``data`` gives every leaf field (``preset`` aside): what the UI form sends."""
    for name, default in leaves.items():
        if name == "preset":
            continue
        if name not in data:
            return False
        if isinstance(default, dict) and not (
            isinstance(data[name], dict) and _is_complete(data[name], default)
        ):
            return False
    return True


def _without_defaults(data: dict[str, Any], leaves: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the leaves that equal their generic default."""
    result: dict[str, Any] = {}
    for name, value in data.items():
        default = leaves.get(name, object())
        if isinstance(default, dict) and isinstance(value, dict):
            result[name] = _without_defaults(value, default)
        elif value != default:
            result[name] = value
    return result


def resolve_config(data: object, model: type[BaseModel]) -> object:
    """Raw config data with the preset's, then the zoo entry's, values in the fields not given.

    "Given" is what the input holds (nested models: their ``model_fields_set``), so an
    explicit flag or file value wins even when it equals the generic default. The Prefect UI
    form sends every field, so there "not given" can only mean "left at the generic default":
    a complete input has those fields filled like absent ones. Precedence: given > preset >
    zoo entry > generic default. ``model`` is the config class (``RetrainConfig``) whose
    generic defaults those are.
    """
    if not isinstance(data, dict):
        return data
    leaves = _leaves(model)
    given = _given(data)
    if _is_complete(given, leaves):
        given = _without_defaults(given, leaves)
    preset = str(given.get("preset", leaves["preset"]))
    if preset in typing.get_args(PresetName):
        given = _fill(given, preset_values(preset))
    architecture = str(_given(given.get("model")).get("architecture", "seed-mlp"))
    return _fill(given, ZOO_DEFAULTS.get(architecture, {}))
