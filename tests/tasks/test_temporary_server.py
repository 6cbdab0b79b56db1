"""The temporary API server a cold run starts ahead (``tasks.temporary_server``): when Prefect
would start one, and what a server that does not start tells."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefect.settings import Settings

from tasks import temporary_server
from tasks.temporary_server import TemporaryServer, TemporaryServerError


def prefect_starts_one(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> bool:
    """Whether Prefect itself, given only this environment, would start a temporary server."""
    for name in [name for name in os.environ if name.startswith("PREFECT_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    return not settings.api.url and bool(settings.server.ephemeral.enabled)


SERVED = '[profiles.s]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
PLAIN = '[profiles.p]\nPREFECT_LOGGING_LEVEL = "DEBUG"\n'
ON = "[profiles.on]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = true\n"


@pytest.mark.parametrize(
    ("profiles", "variables"),
    [
        (None, {}),
        (None, {"PREFECT_API_URL": "http://127.0.0.1:4200/api"}),
        (None, {"PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}),
        ('active = "s"\n' + SERVED, {}),
        (SERVED + PLAIN, {"PREFECT_PROFILE": "s"}),
        (SERVED + PLAIN, {"PREFECT_PROFILE": "p"}),
        (SERVED + PLAIN, {"PREFECT_PROFILE": "p", "PREFECT_SERVER_EPHEMERAL_ENABLED": "1"}),
        (SERVED + ON, {"PREFECT_PROFILE": "on"}),
        (SERVED, {"PREFECT_PROFILE": "missing"}),
        ("not toml [", {}),
    ],
    ids=[
        "no-profiles",
        "url-in-env",
        "ephemeral-off",
        "url-in-active-profile",
        "url-in-chosen-profile",
        "profile-without-ephemeral",
        "profile-and-env",
        "older-name-in-profile",
        "missing-profile",
        "broken-file",
    ],
)
def test_a_server_is_started_exactly_where_prefect_would_start_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    profiles: str | None,
    variables: dict[str, str],
):
    monkeypatch.chdir(tmp_path)
    environ = {"PREFECT_HOME": str(tmp_path / "home"), **variables}
    (tmp_path / "home").mkdir()
    if profiles is not None:
        (tmp_path / "home" / "profiles.toml").write_text(profiles)
    ours = temporary_server.wanted(environ, tmp_path)
    if profiles == "not toml [":
        assert not ours  # unreadable: Prefect decides (and warns)
        return
    assert ours == prefect_starts_one(monkeypatch, environ)


def test_a_settings_file_in_the_working_folder_leaves_it_to_prefect(tmp_path: Path):
    environ = {"PREFECT_HOME": str(tmp_path / "home")}
    assert temporary_server.wanted(environ, tmp_path)
    for name, text in [
        (".env", "PREFECT_API_URL=http://127.0.0.1:1/api\n"),
        ("prefect.toml", "[api]\nurl = 'http://127.0.0.1:1/api'\n"),
        ("pyproject.toml", "[tool.prefect.api]\nurl = 'http://127.0.0.1:1/api'\n"),
    ]:
        (tmp_path / name).write_text(text)
        assert not temporary_server.wanted(environ, tmp_path), name
        (tmp_path / name).unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert temporary_server.wanted(environ, tmp_path)


def test_a_server_that_exits_is_an_error_with_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A uvicorn that fails at once, found first on the path (the real one takes seconds).
    fake = tmp_path / "fake" / "uvicorn"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("import sys\nsys.exit('no database here')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    server = TemporaryServer()
    with pytest.raises(TemporaryServerError) as raised:
        server.wait_until_ready(20)
    message = str(raised.value)
    assert "exited with code 1 before it answered" in message, message
    assert "no database here" in message and f"127.0.0.1:{server.port}" in message
    assert server.process is None


def test_a_server_that_does_not_answer_in_time_is_stopped(tmp_path: Path):
    server = TemporaryServer()
    process = server.process
    assert process is not None and process.poll() is None
    with pytest.raises(TemporaryServerError, match=r"did not answer within 0\.01 s"):
        server.wait_until_ready(0.01)
    assert process.poll() is not None and server.process is None
    server.stop()  # again: nothing to do
