"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temporary folder, started on
a free 127.0.0.1 port (its socket in the same folder), stopped and removed afterwards.

Real PostgreSQL, nothing mocked. As root the server runs as the unprivileged `postgres` user (the
Debian package creates it) through `runuser`; otherwise as the current user. Host connections need
the password (scram-sha-256), so tests exercise credentials the way a team's server does.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SERVER_USER = "postgres"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: Debian's /usr/lib/postgresql/<version>/bin (newest), else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    def __init__(self, bindir: Path, *, fsync: bool = True, password: str | None = None,
                 max_connections: int = 100):
        self.bindir = bindir
        self.fsync = fsync
        self.password = password or "pw-" + uuid.uuid4().hex
        self.max_connections = max_connections
        self.folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self.as_root = os.geteuid() == 0
        self.user = SERVER_USER if self.as_root else os.environ.get("USER") or "postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> "PostgresCluster":
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(self.folder, SERVER_USER)
            shutil.chown(pwfile, SERVER_USER)
        os.chmod(self.folder, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile), "--auth-host=scram-sha-256",
                  "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions")
        pwfile.unlink()
        settings = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.folder}'",
                    "fsync": "on" if self.fsync else "off", "max_connections": str(self.max_connections),
                    "shared_buffers": "'64MB'", "logging_collector": "off"}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# workbench tests\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o",
                          f"-p {self.port}", "-w", "-t", "60", "start")
                return self
            except RuntimeError:
                if attempt == 2:
                    log = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
        return self

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server as an administrator would (`-m fast`: every session gets AdminShutdown), keep
        it down for `down_s`, and start it again on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        time.sleep(down_s)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", f"-p {self.port}",
                  "-w", "-t", "60", "start")

    def url(self, dbname: str = "postgres", *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; its URL (with the password)."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
