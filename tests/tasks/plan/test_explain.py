"""plan's reasons, from two keys' material (the parts ArtifactCache keeps beside a record)."""

from __future__ import annotations

from tasks.plan.explain import explain


def material(**changes):
    base = {
        "format": 3,
        "task": "train_model",
        "code": {"tasks.training.task": "a" * 64, "tasks.prepare.statistics": "b" * 64},
        "libraries": {"tensorflow": "2.21.0", "keras": "3.15.1", "keras backend": "tensorflow"},
        "inputs": {
            "data": {
                "__model__": "NormalisedData",
                "x_train": {"path": "/s/x", "sha256": "c" * 64},
            },
            "training": {"__model__": "TrainingConfig", "epochs": 15},
            "store_root": "store",
        },
    }
    for key, value in changes.items():
        base[key] = value
    return base


def test_a_parameter_is_named_with_its_old_and_new_value():
    new = material()
    new["inputs"]["training"] = {"__model__": "TrainingConfig", "epochs": 30}
    assert explain(new, material()) == ["a parameter changed: training.epochs 15 -> 30"]


def test_a_changed_module_is_named_by_its_file():
    new = material(code={"tasks.training.task": "a" * 64, "tasks.prepare.statistics": "d" * 64})
    assert explain(new, material()) == ["code changed: tasks/prepare/statistics.py"]
    newly = material(
        code={
            "tasks.training.task": "a" * 64,
            "tasks.prepare.statistics": "b" * 64,
            "tasks.prepare.split": "e",
        }
    )
    assert explain(newly, material()) == ["code: tasks/prepare/split.py is newly imported"]


def test_a_changed_source_digest_and_an_upstream_artifact():
    assert explain(material(source="1" * 64), material(source="2" * 64)) == [
        "the source's digest changed (222222222222 -> 111111111111)"
    ]
    new = material()
    new["inputs"]["data"] = {
        "__model__": "NormalisedData",
        "x_train": {"path": "/s/y", "sha256": "f" * 64},
    }
    assert explain(new, material()) == [
        "an input artifact differs from the cached run's: data.x_train.sha256"
    ]


def test_a_library_version_is_named_with_its_old_and_new_version():
    new = material(
        libraries={"tensorflow": "2.22.0", "keras": "3.15.1", "keras backend": "tensorflow"}
    )
    assert explain(new, material()) == ["tensorflow 2.21.0 -> 2.22.0"]
    swapped = material(
        libraries={"tensorflow": "2.21.0", "keras": "3.15.1", "keras backend": "jax"}
    )
    assert explain(swapped, material()) == ["keras backend tensorflow -> jax"]


def test_a_key_from_before_versions_were_recorded_names_the_format_and_each_version():
    old = material(format=2)
    del old["libraries"]
    assert explain(material(), old) == [
        "the cache format changed (2 -> 3)",
        "keras 3.15.1 (not recorded before)",
        "keras backend tensorflow (not recorded before)",
        "tensorflow 2.21.0 (not recorded before)",
    ]
