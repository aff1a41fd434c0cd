"""``bastion serve`` refuses a bad config before it listens, naming the file, the line and the key."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import ROOT, bastion_command, clean_env, free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

ECHO = "  - {name: local, kind: echo, models: [echo-1]}\n"


def serve(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "bastion.yaml"
    config.write_text(config_text)
    env = clean_env(BASTION_HOME=str(tmp_path / "home"), BASTION_DATABASE_URL=f"sqlite:///{tmp_path / 'b.db'}")
    return subprocess.run(
        [*bastion_command(), "serve", "--config", str(config), "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,  # a config that were accepted would serve forever: fail, don't hang
        check=False,
    )


@pytest.mark.parametrize(
    ("config_text", "line", "says"),
    [
        (f"organization: e2e\nproviders:\n{ECHO}projcts:\n  - name: demo\n", 4, "unknown key 'projcts'"),
        (
            "providers:\n  - name: up\n    kind: openai\n    base_ulr: http://127.0.0.1:9/v1\n    models: [m]\n",
            4,
            "unknown key 'base_ulr' in providers[0]",
        ),
        (
            "providers:\n  - name: up\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    models: [m]\n"
            "    timeouts:\n      frist_byte: 1\n",
            7,
            "unknown key 'frist_byte' in providers[0].timeouts",
        ),
        ("providers:\n  - name: up\n    kind: grpc\n    models: [m]\n", 3, "providers[0].kind"),
        (f"server:\n  max_body_bytes: 10\nproviders:\n{ECHO}", 2, "server.max_body_bytes"),
        (
            "providers:\n  - name: up\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    models: [m]\n"
            "    timeouts:\n      first_byte: -1\n",
            7,
            "providers[0].timeouts.first_byte",
        ),
    ],
    ids=[
        "unknown-top-level-key",
        "unknown-provider-key",
        "unknown-nested-key",
        "bad-provider-kind",
        "body-limit-too-small",
        "negative-timeout",
    ],
)
def test_bad_config_stops_serve_with_file_line_and_key(tmp_path: Path, config_text: str, line: int, says: str) -> None:
    done = serve(tmp_path, config_text)
    assert done.returncode != 0
    config = tmp_path / "bastion.yaml"
    assert re.search(rf"^error: {re.escape(str(config))}:{line}: .*{re.escape(says)}", done.stderr, re.M), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_missing_upstream_key_stops_serve_naming_the_variable(tmp_path: Path) -> None:
    config_text = (
        "providers:\n  - name: up\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n"
        "    api_key_env: BASTION_E2E_UNSET_KEY\n    models: [m]\n"
    )
    done = serve(tmp_path, config_text)
    assert done.returncode != 0
    assert "$BASTION_E2E_UNSET_KEY" in done.stderr
    assert "provider 'up'" in done.stderr
    assert "Traceback" not in done.stderr
