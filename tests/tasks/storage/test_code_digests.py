"""The code closure of a module follows the project's static import graph, not site-packages."""

from __future__ import annotations

from tasks.storage.code_digests import closure_digests, code_closure, direct_imports, module_path


def test_closure_reaches_helpers_through_other_modules():
    closure = code_closure("tasks.evaluation.evaluate")
    # evaluate -> tasks.prepare.normalise -> tasks.prepare.statistics (denormalise_target), and a
    # function-level import of tasks.models.zoo.
    assert {
        "tasks.prepare.statistics",
        "tasks.prepare.encode",
        "tasks.models.zoo",
        "tasks.storage.store",
    } <= set(closure)
    assert not any(name.split(".")[0] in ("numpy", "prefect", "keras") for name in closure)


def test_closure_leaves_out_modules_nothing_imports():
    closure = code_closure("tasks.prepare.ingest")
    assert "tasks.prepare.statistics" not in closure and "tasks.evaluation.evaluate" not in closure
    assert "tasks.prepare.ingest" in closure and "tasks.storage.cache_policy" in closure


def test_direct_imports_names_project_modules_only():
    imports = direct_imports("tasks.prepare.split")
    assert "tasks.storage.table" in imports and "schemas.config" in imports
    assert all(name.split(".")[0] in ("tasks", "schemas", "flows") for name in imports)


def test_digests_cover_the_closure_and_name_files():
    digests = closure_digests("tasks.prepare.split")
    assert set(digests) == set(code_closure("tasks.prepare.split"))
    assert all(len(value) == 64 for value in digests.values())
    assert module_path("tasks.prepare.statistics") == "tasks/prepare/statistics.py"
