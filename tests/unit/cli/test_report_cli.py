"""``bastion report``: every report from the command line, its options, its errors, and erasure."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from tests.conftest import SECRET
from tests.unit.compliance.activity import PROVIDERS, Activity, build_activity, copy_store
from typer.testing import CliRunner

from bastion.cli.main import app

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def activity(tmp_path_factory: pytest.TempPathFactory) -> Activity:
    return build_activity(tmp_path_factory.mktemp("cli-activity"))


@pytest.fixture
def report(activity: Activity, tmp_path: Path) -> Callable[..., Ran]:
    """``report("usage", "-f", "json")`` runs ``bastion report`` (``report("members", ...)``: ``bastion members``)
    on a copy of the activity's store."""
    config = tmp_path / "bastion.yaml"
    config.write_text(json.dumps({"providers": PROVIDERS}))
    env = {
        "BASTION_HOME": str(tmp_path / "home"),
        "BASTION_CONFIG": str(config),
        "BASTION_SECRET_KEY": SECRET,
        "BASTION_DATABASE_URL": f"sqlite:///{copy_store(activity, tmp_path / 'store')}",
    }

    def run(*args: str) -> Ran:
        result = CliRunner().invoke(app, ["report", *args] if args[0] != "members" else list(args), env=env)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


def test_markdown_is_the_default(report: Callable[..., Ran]) -> None:
    ran = report("usage")
    assert ran.code == 0, ran.err
    assert ran.out.startswith("# Usage and chargeback\n")
    assert "| alpha | 5 |" in ran.out and "## By model" in ran.out


def test_json_with_a_project_and_a_period(report: Callable[..., Ran]) -> None:
    whole = json.loads(report("usage", "--format", "json").out)
    beta = json.loads(report("usage", "-f", "json", "--project", "beta").out)
    day_two = json.loads(report("usage", "-f", "json", "--since", "2026-11-03", "--until", "2026-11-03").out)
    assert (whole["summary"]["requests"], beta["summary"]["requests"], day_two["summary"]["requests"]) == (9, 4, 4)
    assert day_two["period"] == {"since": "2026-11-03T00:00:00Z", "until": "2026-11-04T00:00:00Z"}


def test_out_writes_a_private_file(report: Callable[..., Ran], tmp_path: Path) -> None:
    target = tmp_path / "keys.md"
    ran = report("keys", "--out", str(target))
    assert (ran.code, ran.out, ran.err.strip()) == (0, "", f"wrote the keys report to {target}")
    assert target.read_text().startswith("# API key inventory\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("chargeback",), "there is no report named 'chargeback'; the reports are usage, violations, keys"),
        (("usage", "--format", "xml"), "--format: 'xml' is not a format; use json or markdown"),
        (("usage", "--subject", "bob@acme.com"), "--subject applies to the dsr report only"),
        (("dsr",), "the dsr report needs --subject"),
        (("keys", "--erase", "--yes"), "--erase applies to the dsr report only"),
        (("dsr", "--subject", "bob@acme.com", "--erase"), "cannot be undone; run the report without --erase first"),
        (("dsr", "--subject", "bob@acme.com", "--erase", "--yes", "-p", "alpha"), "whole organisation; drop --project"),
        (("usage", "--since", "last week"), "since: 'last week' is not a date"),
        (("usage", "--since", "2026-11-05", "--until", "2026-11-01"), "must come before until"),
        (("usage", "--project", "gamma"), "No project is named 'gamma'"),
        (("dsr", "--subject", "bob@acme.com", "--erase", "--yes"), "bob@acme.com is still a member; offboard them"),
    ],
)
def test_errors_are_one_line_and_exit_2(report: Callable[..., Ran], args: tuple[str, ...], message: str) -> None:
    ran = report(*args)
    assert (ran.code, ran.out) == (2, "")
    assert ran.err.startswith("error: ") and message in ran.err and len(ran.err.splitlines()) == 1


def test_erasure_from_the_command_line(report: Callable[..., Ran]) -> None:
    before = json.loads(report("dsr", "--subject", "bob@acme.com", "-f", "json").out)
    assert before["summary"]["status"] == "linked" and before["summary"]["entries_linked"] == 11
    removed = report("members", "remove", "bob@acme.com")  # offboarding comes first
    assert removed.code == 0, removed.err
    erased = report("dsr", "--subject", "bob@acme.com", "--erase", "--yes", "-f", "json")
    assert erased.code == 0, erased.err
    receipt = json.loads(erased.out)
    assert (receipt["title"], receipt["summary"]["entries_unlinked"]) == ("Data-subject erasure", 12)
    after = json.loads(report("dsr", "--subject", "bob@acme.com", "-f", "json").out)
    assert (after["summary"]["status"], after["sections"]["entries"]["rows"]) == ("erased", [])


def test_help_lists_the_reports(report: Callable[..., Ran]) -> None:
    ran = report("--help")
    assert ran.code == 0 and "Print a compliance report" in ran.out
    assert all(
        option in ran.out for option in ("--format", "--since", "--until", "--project", "--out", "--subject", "--erase")
    )
