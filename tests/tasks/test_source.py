"""The code closure of a module follows the project's static import graph, not site-packages."""

from __future__ import annotations

from tasks.source import closure_digests, code_closure, direct_imports, module_path


def test_closure_reaches_helpers_through_other_modules():
    closure = code_closure("tasks.evaluate")
    # evaluate -> tasks.normalise -> tasks.statistics (denormalise_target), and a
    # function-level import of tasks.models.
    assert {"tasks.statistics", "tasks.encode", "tasks.models", "tasks.store"} <= set(closure)
    assert not any(name.split(".")[0] in ("numpy", "prefect", "keras") for name in closure)


def test_closure_leaves_out_modules_nothing_imports():
    closure = code_closure("tasks.ingest")
    assert "tasks.statistics" not in closure and "tasks.evaluate" not in closure
    assert "tasks.ingest" in closure and "tasks.caching" in closure


def test_direct_imports_names_project_modules_only():
    imports = direct_imports("tasks.split")
    assert "tasks.table" in imports and "schemas.config" in imports
    assert all(name.split(".")[0] in ("tasks", "schemas", "flows") for name in imports)


def test_digests_cover_the_closure_and_name_files():
    digests = closure_digests("tasks.split")
    assert set(digests) == set(code_closure("tasks.split"))
    assert all(len(value) == 64 for value in digests.values())
    assert module_path("tasks.statistics") == "tasks/statistics.py"
