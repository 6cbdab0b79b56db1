"""What ``bikeflow plan`` needs of a cached task, read from its module's source, not imported.

Importing a task's module imports Prefect (seconds). Plan needs only what the source states:
the name in ``@task(name=...)``, the parameters of the ``def`` (to name the values it is
called with, as Prefect does) and the cache policy the decorator builds, with its ``modules=``
and ``libraries=``. From those it
computes the key with the same functions the policy uses (``tasks.storage.keys``,
``tasks.prepare.source_access``). tests/tasks/test_task_specs.py checks, for every step of the
retrain flow, that this gives the imported task's own key material.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from typing import Any

from tasks.prepare.source_access import source_key_material
from tasks.storage.code_digests import module_file
from tasks.storage.keys import step_material


@dataclass(frozen=True)
class TaskSpec:
    """A task as its source declares it."""

    name: str
    module: str
    function: str
    parameters: tuple[str, ...]
    policy: str
    modules: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()

    def bind(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """The call's inputs by parameter name (plan passes every parameter, in order)."""
        if len(args) != len(self.parameters):
            raise TypeError(
                f"{self.name} takes {len(self.parameters)} arguments "
                f"({', '.join(self.parameters)}); the plan passed {len(args)}"
            )
        return dict(zip(self.parameters, args, strict=True))

    def key_material(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """The key material the task's cache policy builds from these inputs."""
        material = step_material(self.name, self.module, inputs, self.modules, self.libraries)
        if self.policy == "ArtifactCache":
            return material
        if self.policy == "SourceFingerprint":
            return source_key_material(material, inputs)
        raise ValueError(f"plan does not know the cache policy {self.policy} of {self.name}")


@dataclass(frozen=True)
class _Policy:
    """A ``cache_policy=`` expression: the class it builds, its ``modules=`` and ``libraries=``."""

    name: str
    modules: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()


def _policy(node: ast.expr | None) -> _Policy:
    """Read the policy a ``cache_policy=`` expression builds (its tuples must be literals)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        tuples = {
            str(keyword.arg): tuple(ast.literal_eval(keyword.value))
            for keyword in node.keywords
            if keyword.arg in ("modules", "libraries")
        }
        return _Policy(node.func.id, tuples.get("modules", ()), tuples.get("libraries", ()))
    return _Policy(ast.unparse(node) if node is not None else "(Prefect's default)")


@cache
def task_spec(module: str, function: str) -> TaskSpec:
    """Read the ``@task`` function ``function`` of ``module`` from its source file."""
    path = module_file(module)
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name != function:
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Name)
                and decorator.func.id == "task"
            ):
                continue
            options = {keyword.arg: keyword.value for keyword in decorator.keywords}
            name = ast.literal_eval(options["name"]) if "name" in options else function
            policy = _policy(options.get("cache_policy"))
            arguments = node.args
            parameters = tuple(
                argument.arg
                for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
            )
            return TaskSpec(
                str(name),
                module,
                function,
                parameters,
                policy.name,
                policy.modules,
                policy.libraries,
            )
    raise ValueError(f"{path}: no function {function!r} decorated with @task(...)")
