"""Digests of our own source code, for cache keys and journal names (no Prefect imported).

A step's code is its module and every project module that module imports, directly or
through others (``code_closure``): the import graph is read statically with ``ast`` from the
files under the project root, so no hand-written module list can leave a helper out. Imports
inside functions and under ``TYPE_CHECKING`` count too (a superset is safe: at worst a step
reruns for a module it only names in a type). Only the project's own packages are followed;
site-packages are not (their versions enter a key through ``tasks.storage.library_versions``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import threading
from functools import cache
from pathlib import Path

# The packages whose modules make up a step's code.
PROJECT_PACKAGES = ("flows", "tasks", "schemas")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# CPython 3.11's AST constructor keeps one recursion counter per interpreter: two threads
# parsing at once (parallel tasks computing their cache keys) can fail with "SystemError: AST
# constructor recursion depth mismatch" (python/cpython#106905), so parsing here takes turns.
_PARSING = threading.Lock()


@cache
def module_digest(module: str) -> str:
    """Return the sha256 of a module's source file, found without importing it."""
    return hashlib.sha256(module_file(module).read_bytes()).hexdigest()


@cache
def module_file(module: str) -> Path:
    """The source file of a module: a project module under the project root, else via its spec."""
    parts = module.split(".")
    if parts[0] in PROJECT_PACKAGES:
        base = PROJECT_ROOT.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot locate the source of module {module!r}")
    return Path(spec.origin)


def is_project_module(module: str) -> bool:
    """Tell whether a dotted name is a module (or package) of the project's own packages."""
    parts = module.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return False
    base = PROJECT_ROOT.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _with_packages(module: str) -> list[str]:
    """A module and the packages above it (importing ``tasks.x`` runs ``tasks/__init__.py``)."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def direct_imports(module: str) -> frozenset[str]:
    """The project modules one module's source imports anywhere in its body."""
    path = module_file(module)
    with _PARSING:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import: resolve it against this module's package.
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            # ``from tasks import store`` imports the module tasks.storage.store.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found: set[str] = set()
    for name in names:
        for candidate in _with_packages(name):
            if is_project_module(candidate):
                found.add(candidate)
    found.discard(module)
    return frozenset(found)


@cache
def code_closure(module: str) -> tuple[str, ...]:
    """A module and every project module it imports, transitively, sorted."""
    seen = {candidate for candidate in _with_packages(module) if is_project_module(candidate)}
    seen.add(module)
    pending = list(seen)
    while pending:
        for imported in direct_imports(pending.pop()):
            if imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return tuple(sorted(seen))


def closure_digests(*modules: str) -> dict[str, str]:
    """Module name -> sha256 of its source, over the closure of the given modules."""
    names: set[str] = set()
    for module in modules:
        names.update(code_closure(module))
    return {name: module_digest(name) for name in sorted(names)}


def module_path(module: str) -> str:
    """A module's file relative to the project root (as plan names a changed file)."""
    path = module_file(module)
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
