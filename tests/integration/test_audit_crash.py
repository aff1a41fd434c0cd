"""A gateway killed with SIGKILL under load loses no audit entry of a request its client saw succeed.

``bastion serve`` runs as a child process with checkpoints every second; concurrent clients send requests until
a few hundred have succeeded, then the process is killed mid-load. After a restart, ``bastion audit verify``
must pass and every request answered 200 must have its ``request.completed`` entry, found by its request id.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.processes import ROOT, Server, bastion_command, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
WORKERS = 32
KILL_AFTER = 300  # successful requests before the kill
CONFIG = """\
organization: crash
audit: {checkpoint_interval: 1s}
providers:
  - {name: local, kind: echo, models: [echo-1]}
projects:
  - {name: p}
"""


class Gateway:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.home = tmp_path
        self.config = tmp_path / "bastion.yaml"
        self.config.write_text(CONFIG)
        self.env = clean_env(
            BASTION_HOME=str(tmp_path),
            BASTION_DATABASE_URL=database_url,
            BASTION_SECRET_KEY="c" * 64,
            BASTION_LOG_LEVEL="WARNING",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*bastion_command(), *args, "--config", str(self.config)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def serve(self, name: str) -> Server:
        args = [*bastion_command(), "serve", "--config", str(self.config), "--port", str(self.port)]
        server = Server.start(args, self.home / f"{name}.log", self.env)
        wait_until(lambda: server.answers(f"{self.url}/readyz"), 30, f"the {name} gateway to be ready")
        return server


async def load_until_killed(gateway: Gateway, key: str, server: Server) -> dict[str, int]:
    """Request ids of the requests answered 200, from clients that keep sending until the gateway is killed."""
    succeeded: dict[str, int] = {}
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "the quarterly numbers"}]}
    headers = {"Authorization": f"Bearer {key}"}

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                response = await http.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
            except httpx.TransportError:
                return  # the gateway is gone
            if response.status_code == 200:
                succeeded[response.headers["x-bastion-request-id"]] = len(succeeded)
                if len(succeeded) == KILL_AFTER:
                    server.process.kill()

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(WORKERS)))
    return succeeded


def completed_ids(gateway: Gateway) -> set[str]:
    exported = gateway.cli("audit", "export")
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    return {entry["request_id"] for entry in entries if entry["action"] == "request.completed"}


def restart_answers(gateway: Gateway, key: str) -> int:
    """Start the gateway again on the same store and send it one request; its status."""
    restarted = gateway.serve("restarted")
    try:
        body = {"model": "echo-1", "messages": [{"role": "user", "content": "still here?"}]}
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30).status_code
    finally:
        restarted.stop()


def test_a_crash_loses_no_entry_of_a_request_the_client_saw_succeed(tmp_path: Path, database_url: str) -> None:
    gateway = Gateway(tmp_path, database_url)
    created = gateway.cli("keys", "create", "--project", "p")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    server = gateway.serve("first")
    try:
        succeeded = asyncio.run(load_until_killed(gateway, key, server))
    finally:
        server.stop()
    assert server.process.returncode == -9  # killed, not stopped
    assert len(succeeded) >= KILL_AFTER
    assert restart_answers(gateway, key) == 200
    verified = gateway.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("verified ")
    assert " against " in verified.stdout and " 0 checkpoints" not in verified.stdout
    missing = set(succeeded) - completed_ids(gateway)
    assert not missing, f"{len(missing)} requests answered 200 have no request.completed entry"
