"""JAX's compilation cache for the training child (tasks/training/compile_cache.py)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from tasks.training import compile_cache
from tasks.training.child_process import discard_spares
from tasks.training.task import run_training_process
from tests.tasks.training.test_jax_fit import _with
from tests.tasks.training.test_resume import _request as resume_request


def test_the_default_folder_is_the_users_own_and_every_program_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    environ: dict[str, str] = {}
    folder = compile_cache.use_compile_cache(environ)
    assert folder == tmp_path / "cache" / "bikeflow" / "jax" and folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # JAX trusts what it loads from it
    assert environ == {
        "JAX_COMPILATION_CACHE_DIR": str(folder),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "JAX_COMPILATION_CACHE_MAX_SIZE": str(compile_cache.CACHE_BYTES),
    }


def test_the_environment_chooses_the_folder_and_the_bound_or_turns_it_off(tmp_path: Path):
    environ = {
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine"),
        "JAX_COMPILATION_CACHE_MAX_SIZE": "1000",
    }
    assert compile_cache.use_compile_cache(environ) == tmp_path / "mine"
    assert environ["JAX_COMPILATION_CACHE_MAX_SIZE"] == "1000"  # the user's bound stays
    off = {"JAX_COMPILATION_CACHE_DIR": ""}
    assert compile_cache.use_compile_cache(off) is None
    assert off == {"JAX_COMPILATION_CACHE_DIR": ""}


@pytest.mark.slow
def test_a_second_child_loads_the_programs_and_trains_the_same_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "jax-cache"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache))
    discard_spares()  # a spare started earlier would have another folder in its environment
    runs, finished = [], []
    for name in ("first", "second"):
        request = _with(resume_request(tmp_path / name, train_rows=200), epochs=3, backend="jax")
        runs.append(run_training_process(request, lambda record, total: None, lambda _: None))
        finished.append(time.time_ns())
        if name == "first":
            written = {p.name: p.stat().st_mtime_ns for p in cache.glob("*-cache")}
    # The first child compiled and kept its programs; the second compiled nothing new ...
    assert written and {p.name for p in cache.glob("*-cache")} == set(written)
    # ... and read them (JAX stamps an entry's last use beside it when it reads it).
    read_again = [
        p for p in cache.glob("*-atime") if int.from_bytes(p.read_bytes(), "little") > finished[0]
    ]
    assert len(read_again) == len(written)
    assert [r.model_dump() for r in runs[0].history] == [r.model_dump() for r in runs[1].history]
