from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from tests.harness import in_process

from bastion.obs import logs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bastion.config import Settings


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Restores Bastion's logger after a test that configured it (which it must do in the test's body,
    where pytest's capture of stderr is the one ``capsys`` reads)."""
    root = logging.getLogger("bastion")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_a_log_line_is_one_json_object(capsys: pytest.CaptureFixture[str], json_logs: None) -> None:
    logs.configure("INFO")
    logs.access({"request_id": "req_1", "status": 200})
    try:
        raise ValueError("boom")  # the formatter names the error type, never its message
    except ValueError:
        logging.getLogger("bastion.test").exception("failed")
    access, failure = lines(capsys.readouterr().err)
    assert (access["logger"], access["request_id"], access["status"]) == ("bastion.access", "req_1", 200)
    assert str(access["time"]).count(":") == 2
    assert (failure["level"], failure["error"], failure["message"]) == ("error", "ValueError", "failed")
    assert "boom" not in json.dumps(failure)


def test_quiet_below_info(capsys: pytest.CaptureFixture[str], json_logs: None) -> None:
    logs.configure("WARNING")
    logs.access({"request_id": "req_2"})
    logging.getLogger("bastion.test").warning("shown")
    assert [line["message"] for line in lines(capsys.readouterr().err)] == ["shown"]


@pytest.mark.anyio
async def test_access_lines_never_carry_content_or_keys(
    capsys: pytest.CaptureFixture[str], json_logs: None, make_settings: Callable[..., Settings]
) -> None:
    logs.configure("INFO")
    echo = [{"name": "local", "kind": "echo", "models": ["echo-1"]}]
    settings = make_settings(providers=echo, projects=[{"name": "p"}])
    async with in_process(settings) as (app, http):
        assert app.runtime is not None
        _, key = app.runtime.services.keys.create("p")
        body = {"model": "echo-1", "messages": [{"role": "user", "content": "salary of jane: 91k"}]}
        await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    err = capsys.readouterr().err
    (line,) = [entry for entry in lines(err) if entry.get("path") == "/v1/chat/completions"]
    assert (line["project"], line["model"], line["status"], line["key"]) == ("p", "echo-1", 200, key[:12])
    assert "salary" not in err and key not in err
