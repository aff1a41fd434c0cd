"""The usage report against what the clients saw: requests and tokens per project, principal, model and day."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from tests.unit.compliance.activity import query

from bastion.compliance import usage
from bastion.compliance.render import to_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.compliance.source import Source

TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")


def expected(activity: Activity, keys: tuple[str, ...], day: str | None = None) -> dict[tuple[Any, ...], Counter[str]]:
    """The client's view: every answered call, summed by ``keys``, its usage as the response reported it."""
    totals: dict[tuple[Any, ...], Counter[str]] = {}
    for call in activity.calls:
        if call.status != 200 or day not in (None, call.day):
            continue
        counts = totals.setdefault(tuple(getattr(call, key) for key in keys), Counter())
        counts["requests"] += 1
        if call.usage is None:
            counts["unmetered"] += 1
        for name in TOKENS:
            counts[name] += (call.usage or {}).get(name, 0)
    return totals


def reported(json: dict[str, Any], section: str, keys: tuple[str, ...]) -> dict[tuple[Any, ...], Counter[str]]:
    counted = ("requests", "unmetered", *TOKENS)
    return {
        tuple(row[key] for key in keys): Counter({name: row[name] for name in counted if row[name]})
        for row in json["sections"][section]["rows"]
    }


@pytest.mark.parametrize(
    ("section", "keys"),
    [
        ("by_project", ("project",)),
        ("by_principal", ("project", "principal")),
        ("by_model", ("model",)),
        ("by_day", ("day",)),
        ("detail", ("day", "project", "principal", "model")),
    ],
)
def test_every_grouping_sums_what_the_clients_were_told(
    make_source: Callable[..., Source], activity: Activity, section: str, keys: tuple[str, ...]
) -> None:
    report = to_json(usage.build(make_source(), query()))
    assert reported(report, section, keys) == expected(activity, keys)


def test_totals_and_the_shape_of_the_activity(make_source: Callable[..., Source], activity: Activity) -> None:
    report = to_json(usage.build(make_source(), query()))
    summary = report["summary"]
    (overall,) = expected(activity, ()).values()
    assert {name: summary[name] for name in ("requests", "unmetered", *TOKENS)} == {
        "requests": 9,
        "unmetered": 1,
        **{name: overall[name] for name in TOKENS},
    }
    by_project = {row["project"]: row["requests"] for row in report["sections"]["by_project"]["rows"]}
    by_day = {row["day"]: row["requests"] for row in report["sections"]["by_day"]["rows"]}
    embeddings = [
        r for r in report["sections"]["detail"]["rows"] if r["principal"] == "project:beta" and r["day"] == "2026-11-03"
    ]
    assert (by_project, by_day) == ({"alpha": 5, "beta": 4}, {"2026-11-02": 5, "2026-11-03": 4})
    assert [(r["completion_tokens"], r["prompt_tokens"] > 0) for r in embeddings] == [(0, True)]


def test_the_period_and_the_project_narrow_the_report(make_source: Callable[..., Source], activity: Activity) -> None:
    source = make_source()
    day_two = to_json(usage.build(source, query(since="2026-11-03")))
    day_one = to_json(usage.build(source, query(until="2026-11-02")))
    beta = to_json(usage.build(source, query(project="beta")))
    assert reported(day_two, "by_day", ("day",)) == expected(activity, ("day",), day="2026-11-03")
    assert reported(day_one, "by_day", ("day",)) == expected(activity, ("day",), day="2026-11-02")
    assert {row["project"] for row in beta["sections"]["by_principal"]["rows"]} == {"beta"}
    assert beta["summary"]["requests"] == 4 and beta["project"] == "beta"


def test_principals_are_ids_never_addresses(make_source: Callable[..., Source], activity: Activity) -> None:
    report = to_json(usage.build(make_source(), query()))
    principals = {row["principal"] for row in report["sections"]["by_principal"]["rows"]}
    assert principals == {
        f"member:{activity.ids['bob@acme.com']}",
        f"member:{activity.ids['dan@acme.com']}",
        "service_account:bot-a",
        "service_account:bot-b",
        "project:beta",
    }
    assert "@" not in str(report["sections"])
