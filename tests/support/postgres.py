"""A real PostgreSQL server for tests, started from Debian's ``postgresql`` package binaries.

:class:`PostgresServer` runs ``initdb`` into a fresh temporary directory, starts the server with
``pg_ctl`` on 127.0.0.1 at a free TCP port (its unix socket inside that directory, durability
switched off for speed), hands out one fresh database per caller with
:meth:`PostgresServer.create_database`, and on :meth:`PostgresServer.close` stops the server
and deletes the directory::

    with PostgresServer() as server:
        url = server.create_database()  # "postgresql+psycopg://flowbot@127.0.0.1:PORT/test_…"

PostgreSQL refuses to run as root. When this process is root (containers, CI), ``initdb`` and
``pg_ctl`` run as Debian's ``postgres`` system user through ``runuser``, and the temporary
directory (under ``/tmp``) is chowned to that user. Authentication is ``trust`` for the one
superuser ``flowbot``: there is no password, and the server listens on 127.0.0.1 only.

Missing binaries raise :class:`PostgresServerError` saying how to install them: a suite that
needs PostgreSQL fails rather than skips.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

__all__ = ["PostgresServer", "PostgresServerError", "find_server_binaries"]

USER = "flowbot"
HOST = "127.0.0.1"
SYSTEM_USER = "postgres"  # Debian's postgresql package creates it; used only when we are root
DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = (
    "the tests start their own PostgreSQL server and need its binaries (initdb, pg_ctl): "
    "install Debian's package with `apt-get install postgresql` (.ci/run does this when missing)"
)
# Test settings: nothing here has to survive a crash, and many tests connect at once.
SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
START_ATTEMPTS = 3  # another process may take the free port between choosing and binding it
START_TIMEOUT_S = 60


class PostgresServerError(RuntimeError):
    """PostgreSQL could not be found, initialised, started or used; the message says why."""


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` -> ``(15,)``; ``…/9.6/bin`` -> ``(9, 6)``; else ``()``."""
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return ()


def find_server_binaries() -> tuple[Path, Path]:
    """Return absolute paths ``(initdb, pg_ctl)``.

    Looks on ``PATH`` first, then in the newest ``/usr/lib/postgresql/<version>/bin`` (where
    Debian puts them: its ``/usr/bin`` has only the client wrappers). Raises
    :class:`PostgresServerError` with the install command when neither has both.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).absolute(), Path(pg_ctl).absolute()
    candidates = sorted(Path("/").glob(DEBIAN_BIN_DIRS.lstrip("/")), key=_version_key)
    for bin_dir in reversed(candidates):
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir / "initdb", bin_dir / "pg_ctl"
    raise PostgresServerError(f"initdb/pg_ctl not on PATH nor in {DEBIAN_BIN_DIRS}: {INSTALL_HINT}")


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _system_user() -> pwd.struct_passwd:
    """The ``postgres`` account the server runs as when we are root; error if it is missing."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresServerError(
            f"running as root, so PostgreSQL must run as the {SYSTEM_USER!r} system user, "
            f"which does not exist: {INSTALL_HINT}"
        ) from None


class PostgresServer:
    """One PostgreSQL server in a temporary directory, listening on 127.0.0.1.

    Constructing it finds the binaries (:func:`find_server_binaries`; as root, also the
    ``postgres`` user) and raises :class:`PostgresServerError` when they are missing. Then
    :meth:`start` it, or use it as a context manager, which starts and closes it. ``port``,
    ``url`` and ``directory`` exist while it runs. :meth:`create_database` returns a SQLAlchemy
    URL for a new, empty database. :meth:`close` stops the server (``pg_ctl stop -m
    immediate``) and removes the directory; it is safe to call more than once.
    """

    def __init__(self) -> None:
        self._initdb, self._pg_ctl = find_server_binaries()
        self._as_root = os.geteuid() == 0
        self._owner = _system_user() if self._as_root else None
        self._dir: Path | None = None
        self._port: int | None = None
        self._databases = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Initialise a cluster and start the server; returns ``self``.

        Raises :class:`PostgresServerError` (with ``initdb``'s output or the server log) when
        either step fails; the temporary directory is removed in that case.
        """
        if self._dir is not None:
            raise PostgresServerError("this PostgresServer is already started")
        self._dir = self._make_dir()
        try:
            self._initdb_cluster()
            self._start_on_free_port()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the server at once and delete its directory. Idempotent."""
        directory, self._dir = self._dir, None
        if directory is None:
            return
        data = directory / "data"
        try:
            # postmaster.pid exists from start until stop, even if start timed out half-way.
            if (data / "postmaster.pid").exists():
                self._run_in(directory, self._pg_ctl, "stop", "-D", str(data), "-m", "immediate")
        finally:
            self._port = None
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests use ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1. Raises :class:`PostgresServerError` when not running."""
        if self._port is None:
            raise PostgresServerError("the PostgresServer is not running: call start() first")
        return self._port

    @property
    def directory(self) -> Path:
        """The temporary directory: ``data/`` (the cluster), ``server.log`` and the unix
        socket. Raises :class:`PostgresServerError` when not running."""
        if self._dir is None or self._port is None:
            raise PostgresServerError("the PostgresServer is not running: call start() first")
        return self._dir

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the maintenance database ``postgres``; tests want
        :meth:`create_database` instead, so that they do not share tables."""
        return self._url("postgres")

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its URL,
        ``postgresql+psycopg://flowbot@127.0.0.1:PORT/NAME``.

        ``name`` defaults to a unique ``test_<n>_<hex>``. Raises :class:`PostgresServerError`
        when the server is not running, and ``psycopg.errors.DuplicateDatabase`` when ``name``
        already exists.
        """
        self._databases += 1
        name = name or f"test_{self._databases}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            host=HOST, port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self._url(name)

    # -- internals --------------------------------------------------------------------------

    def _url(self, database: str) -> str:
        url = URL.create(
            "postgresql+psycopg", username=USER, host=HOST, port=self.port, database=database
        )
        return url.render_as_string(hide_password=False)

    def _make_dir(self) -> Path:
        """A fresh directory only the server's user can enter. As root it is made under /tmp
        (which ``postgres`` can traverse, unlike pytest's 0700 temp dirs) and chowned."""
        directory = Path(
            tempfile.mkdtemp(prefix="flowbot-pg-", dir="/tmp" if self._as_root else None)
        )
        if self._owner is not None:
            os.chown(directory, self._owner.pw_uid, self._owner.pw_gid)
        directory.chmod(0o700)
        return directory

    def _run(self, binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """:meth:`_run_in` the temporary directory."""
        assert self._dir is not None
        return self._run_in(self._dir, binary, *args)

    def _run_in(self, cwd: Path, binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary in ``cwd`` (as ``postgres`` through ``runuser`` when we are
        root: it could not enter root's working directory); output is captured and returned,
        a non-zero exit is not raised. Raises ``subprocess.TimeoutExpired`` after a minute."""
        argv = [str(binary), *args]
        if self._as_root:
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        return subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT_S
        )

    def _initdb_cluster(self) -> None:
        """``initdb`` into ``<dir>/data`` with trust auth for ``flowbot``, then append the test
        settings to its ``postgresql.conf``."""
        assert self._dir is not None
        data = self._dir / "data"
        done = self._run(
            self._initdb,
            *("-D", str(data), "--auth=trust", f"--username={USER}"),
            *("--encoding=UTF8", "--no-locale", "--no-sync"),
        )
        if done.returncode != 0:
            raise PostgresServerError(
                f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        socket_dir = self._dir  # short path: unix socket paths are limited to ~100 bytes
        lines = [f"{key} = '{value}'" for key, value in SETTINGS.items()]
        lines.append(f"unix_socket_directories = '{socket_dir}'")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n# flowbot tests\n" + "\n".join(lines) + "\n")

    def _start_on_free_port(self) -> None:
        """``pg_ctl start -w`` on a free port, trying another port when the chosen one was
        taken meanwhile. Raises :class:`PostgresServerError` with the server log on failure."""
        assert self._dir is not None
        log = self._dir / "server.log"
        for _ in range(START_ATTEMPTS):
            log.unlink(missing_ok=True)
            port = _free_port()
            done = self._run(
                self._pg_ctl,
                *("start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self._dir / "data")),
                *("-l", str(log), "-o", f"-p {port}"),
            )
            if done.returncode == 0:
                self._port = port
                return
            server_log = log.read_text(errors="replace") if log.exists() else ""
            if "could not bind" not in server_log:
                break
        raise PostgresServerError(
            f"pg_ctl start failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
            f"server log:\n{server_log}"
        )
