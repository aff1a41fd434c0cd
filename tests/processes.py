"""Child processes for integration and end-to-end tests: free ports, polling, and servers with logs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def bastion_command() -> list[str]:
    """The ``bastion`` console script of the interpreter running the tests."""
    script = Path(sys.executable).with_name("bastion")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from bastion.cli.main import main; main()"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any BASTION_* setting of the developer's, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("BASTION_")}
    env.update(extra)
    return env


@dataclass
class Server:
    """A child process with its output in a log file; stopped (and its log closed) by :meth:`stop`."""

    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @classmethod
    def start(cls, args: list[str], log_path: Path, env: dict[str, str]) -> Server:
        log = log_path.open("wb")
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return cls(process, log_path, log)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self, url: str) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"{self.process.args} exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
