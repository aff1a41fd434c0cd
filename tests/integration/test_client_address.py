"""A real server decides the client's address itself: X-Forwarded-For counts only from trusted proxies."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml
from tests.processes import ROOT, Server, bastion_command, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def serve(tmp_path: Path, trusted: list[str]) -> tuple[Server, str, str]:
    config = tmp_path / "bastion.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"trusted_proxies": trusted},
                "providers": [{"name": "local", "kind": "echo", "models": ["echo-1"]}],
                "projects": [{"name": "p"}],
                "service_accounts": [{"name": "office", "project": "p", "ip_allowlist": ["10.0.1.0/24"]}],
            }
        )
    )
    env = clean_env(BASTION_HOME=str(tmp_path), BASTION_LOG_LEVEL="WARNING")
    key = subprocess.run(
        [
            *bastion_command(),
            "keys",
            "create",
            "--project",
            "p",
            "--service-account",
            "office",
            "--config",
            str(config),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    url = f"http://127.0.0.1:{free_port()}"
    args = [*bastion_command(), "serve", "--config", str(config), "--port", url.rsplit(":", 1)[1]]
    server = Server.start(args, tmp_path / "gateway.log", env)
    wait_until(lambda: server.answers(f"{url}/readyz"), 30, "bastion serve to be ready")
    return server, url, key


@pytest.mark.parametrize(("trusted", "status"), [([], 403), (["127.0.0.0/8"], 200)])
def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path, trusted: list[str], status: int) -> None:
    server, url, key = serve(tmp_path, trusted)
    try:
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "10.0.1.7"}
        response = httpx.get(f"{url}/v1/models", headers=headers, timeout=10)
    finally:
        server.stop()
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "ip_not_allowed"
        assert "127.0.0.1" in response.json()["error"]["message"]
