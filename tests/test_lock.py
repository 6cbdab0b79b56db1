"""The lock file: bounded direct dependencies, a lock that matches them, Prefect's version."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


def direct_requirements() -> list[tuple[str, Requirement]]:
    """Every requirement of pyproject.toml, with the list it is in ("" for the core ones)."""
    found = [("", Requirement(text)) for text in PROJECT["dependencies"]]
    for extra, texts in PROJECT["optional-dependencies"].items():
        found += [(extra, Requirement(text)) for text in texts]
    return found


def locked_versions() -> dict[str, list[str]]:
    """Package name -> the versions uv.lock resolves it to (one per fork; we expect one)."""
    versions: dict[str, list[str]] = {}
    for package in LOCK["package"]:
        versions.setdefault(canonicalize_name(package["name"]), []).append(package["version"])
    return versions


def own_entry() -> dict[str, Any]:
    """uv.lock's entry for bikeflow itself (its requirements as the lock last saw them)."""
    return next(p for p in LOCK["package"] if p["name"] == PROJECT["name"])


def test_every_direct_dependency_has_an_upper_bound() -> None:
    unbounded = [
        f"{extra or 'dependencies'}: {requirement}"
        for extra, requirement in direct_requirements()
        # bikeflow[dask,...] in dev names our own extras: its bounds are theirs.
        if canonicalize_name(requirement.name) != PROJECT["name"]
        and not any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier)
    ]
    assert unbounded == [], f"direct dependencies without an upper bound: {unbounded}"


def test_the_locked_versions_satisfy_pyproject() -> None:
    # One resolution (Python 3.11 on Linux, [tool.uv] environments), inside every bound.
    versions = locked_versions()
    for extra, requirement in direct_requirements():
        name = canonicalize_name(requirement.name)
        if name == PROJECT["name"]:
            continue
        assert len(versions.get(name, [])) == 1, f"{name}: locked as {versions.get(name)}"
        assert requirement.specifier.contains(versions[name][0], prereleases=True), (
            f"{extra or 'dependencies'}: {name} {versions[name][0]} is outside {requirement}"
        )


def test_the_lock_was_made_from_this_pyproject() -> None:
    # What `uv lock --check` (in .ci/run) refuses; checked here too, without uv, by comparing
    # the requirements the lock recorded with pyproject.toml's.
    def key(name: str, extras: Any, specifier: str, marker: str) -> tuple[str, ...]:
        # Normalised: canonical names, sorted extras, specifiers in SpecifierSet's order.
        return (
            canonicalize_name(name),
            ",".join(sorted(extras or ())),
            str(SpecifierSet(specifier)),
            marker,
        )

    recorded = sorted(
        key(r["name"], r.get("extras"), r.get("specifier", ""), r.get("marker", ""))
        for r in own_entry()["metadata"]["requires-dist"]
    )
    declared = sorted(
        key(
            requirement.name,
            requirement.extras,
            str(requirement.specifier),
            f"extra == '{extra}'" if extra else "",
        )
        for extra, requirement in direct_requirements()
    )
    assert recorded == declared, "uv.lock is stale: run `uv lock` and commit uv.lock"


def test_prefect_yaml_names_the_locked_prefect() -> None:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert str(deployments["prefect-version"]) == locked_versions()["prefect"][0]
