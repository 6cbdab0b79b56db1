"""Exit codes: 0 success, 1 a user error, 2 usage, 70 a bug (with its traceback); --help says so."""

from __future__ import annotations

import pytest

from flows.cli.main import main

NEEDS_PREFECT = False


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for code, words in (("0", "success"), ("1", "user error"), ("2", "usage"), ("70", "bug")):
        assert any(line.split()[:1] == [code] and words in line for line in shown.splitlines())


def test_a_bad_config_is_a_user_error(tmp_path, capsys):
    assert main(["plan", "--test-days", "-3", "--store-root", str(tmp_path / "s")]) == 1
    assert "bikeflow: invalid configuration" in capsys.readouterr().err


def test_a_bug_escaping_a_handler_exits_70_with_its_traceback(tmp_path, monkeypatch, capsys):
    import tasks.plan.engine

    def broken(config):
        return {}["no such key"]  # our own bug, not the user's

    monkeypatch.setattr(tasks.plan.engine, "plan_steps", broken)

    assert main(["plan", "--store-root", str(tmp_path / "store")]) == 70
    error = capsys.readouterr().err
    assert "Traceback (most recent call last)" in error
    assert "KeyError: 'no such key'" in error
    assert "bikeflow: plan failed on an unexpected KeyError" in error and "a bug" in error
