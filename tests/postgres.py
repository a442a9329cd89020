"""A throwaway PostgreSQL server for storage tests.

NAS_TEST_POSTGRES_URL, when set, names a server to use as is. Otherwise the Debian
server binaries are used to start a private cluster on loopback (as the postgres
user when running as root: the server refuses root). When neither is possible the
tests skip, unless NAS_REQUIRE_POSTGRES=1 (set by .ci/run), where they fail.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional


def _bin_dir() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database; stop the server afterwards."""
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    data, sock, log = root / "data", root / "sock", root / "log"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, text=True)  # noqa: E731
    run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
         f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off", "start"])
    try:
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "nas"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/nas"
    finally:
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown
            for _ in range(100):
                if not pid_file.exists():
                    break
                time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)
