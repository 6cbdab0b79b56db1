"""A throwaway PostgreSQL cluster on loopback for the Prefect server's database.

Debian's server binaries (``apt-get install postgresql``) are used in place: ``initdb`` makes a
cluster in a fresh temporary folder, ``pg_ctl`` starts it on a free 127.0.0.1 port with its
unix socket in that folder, and the cluster (folder included) is gone when the context ends.
PostgreSQL refuses to run as root, so as root (CI) it runs as the ``postgres`` user that the
Debian package creates.

``benchmarks/database_overhead.py`` and the scale-out tests (``tests/deployments/``) both start
one; it lives here because the tests may import the benchmarks' helpers, never the reverse.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

DATABASE = "prefect"
USER = "prefect"


def postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server binaries, if any."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _runner() -> tuple[list[str], int | None]:
    """The command prefix that runs a program as an unprivileged user, and that user's uid."""
    if os.geteuid() != 0:
        return [], None
    account = pwd.getpwnam("postgres")
    return ["runuser", "-u", account.pw_name, "--"], account.pw_uid


@contextmanager
def postgres_cluster(port: int) -> Iterator[tuple[str, str]]:
    """Run a fresh cluster on 127.0.0.1:port; yield (asyncpg URL, password); stop and delete it."""
    binaries = postgres_bin()
    assert binaries is not None, "no PostgreSQL server binaries (apt-get install postgresql)"
    prefix, uid = _runner()
    base = Path(tempfile.mkdtemp(prefix="bikeflow-pg-"))
    data, password_file = base / "data", base / "password"
    password = secrets.token_urlsafe(18)
    password_file.write_text(password + "\n")
    if uid is not None:
        os.chown(base, uid, -1)
        os.chown(password_file, uid, -1)

    def run(*command: str) -> None:
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, cwd=base
        )
        assert result.returncode == 0, f"{command[0]}:\n{result.stdout}{result.stderr}"

    started = False
    try:
        # Password (scram) authentication over TCP, as a database on another host would have.
        run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base}"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o", options,
            "start")  # fmt: skip
        started = True
        run(str(binaries / "createdb"), "-h", str(base), "-p", str(port), "-U", USER, DATABASE)
        yield f"postgresql+asyncpg://{USER}:{password}@127.0.0.1:{port}/{DATABASE}", password
    finally:
        if started:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
