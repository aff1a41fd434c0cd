"""Entries out of the store: streamed for export, paged with filters, and written as JSONL or CEF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from bastion import __version__
from bastion.audit.export import (
    EntryFilter,
    StoredEntry,
    cef,
    export,
    find_entries,
    jsonl,
    name_of,
    severity_of,
    stored_entries,
    syslog,
)
from bastion.audit.log import Record, append_in, canonical
from bastion.audit.merkle import leaf_hash

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from bastion.services import Services

START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def stored(data: dict[str, Any]) -> StoredEntry:
    text = canonical(data)
    return StoredEntry(data.get("seq", 0), text.decode(), leaf_hash(text).hex())


def fill(engine: Engine, count: int) -> None:
    """``count`` entries: projects alpha/beta alternate, every third refused, one minute apart."""
    records = [
        Record(
            "request.refused" if seq % 3 == 0 else "request.completed",
            f"service_account:bot-{seq % 2}",
            "alpha" if seq % 2 == 0 else "beta",
            403 if seq % 3 == 0 else 200,
            f"req_{seq:04d}",
            {"n": seq},
            START + timedelta(minutes=seq),
        )
        for seq in range(count)
    ]
    with engine.begin() as connection:
        append_in(connection, records)


def test_jsonl_is_the_canonical_bytes_and_a_newline() -> None:
    entry = stored({"seq": 7, "b": "é", "a": [1, None]})
    assert jsonl(entry) == '{"a":[1,null],"b":"é","seq":7}\n'.encode()


REFUSAL = {
    "seq": 12,
    "time": "2026-01-31T12:00:00.250000Z",
    "action": "request.refused",
    "actor": "service_account:bot",
    "project": "alpha",
    "status": 403,
    "request_id": "req_1",
    "reason": "sensitive_data_blocked",
    "client_ip": "10.0.1.7",
    "endpoint": "chat.completions",
    "model": "gpt-4.1",
    "latency_ms": 1.5,
    "tokens": {"total_tokens": 30},
}


def test_a_cef_line_has_the_usual_header_and_labelled_fields() -> None:
    data = REFUSAL
    line = cef(stored(data)).decode()
    header, _, extension = line.rpartition("|")
    assert header == f"CEF:0|Bastion|Bastion|{__version__}|request.refused|Request refused by Bastion|7"
    assert line.endswith("\n") and line.count("\n") == 1
    fields = dict(pair.split("=", 1) for pair in extension.split())
    assert fields["rt"] == str(int(datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC).timestamp() * 1000))
    assert (fields["act"], fields["suser"], fields["src"], fields["outcome"]) == (
        "request.refused",
        "service_account:bot",
        "10.0.1.7",
        "failure",
    )
    assert (fields["cs1Label"], fields["cs1"], fields["cn1Label"], fields["cn1"]) == ("project", "alpha", "seq", "12")
    assert (fields["cn3Label"], fields["cn3"], fields["cfp1"]) == ("totalTokens", "30", "1.5")
    assert fields["cs6"] == leaf_hash(canonical(data)).hex()
    assert "cs4" not in fields  # no provider: the field is left out, not sent empty


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("a=b", "a\\=b"), ("back\\slash", "back\\\\slash"), ("two\nlines\r", "two\\nlines\\r"), ("pipe|ok", "pipe|ok")],
)
def test_extension_values_are_escaped(value: str, escaped: str) -> None:
    line = cef(stored({"seq": 1, "action": "member.add", "actor": value})).decode()
    assert f" suser={escaped} " in line


def test_header_fields_escape_pipes_and_backslashes() -> None:
    line = cef(stored({"seq": 1, "action": "odd|action\\x"})).decode()
    assert line.startswith("CEF:0|Bastion|Bastion|" + __version__ + "|odd\\|action\\\\x|Admin change: odd\\|action")


@pytest.mark.parametrize(
    ("data", "severity", "name"),
    [
        ({"action": "request.forwarded"}, 1, "Request forwarded to an upstream model"),
        ({"action": "request.completed"}, 1, "Request completed"),
        ({"action": "request.failed", "reason": "upstream_unavailable"}, 4, "Request failed at the upstream"),
        ({"action": "request.refused", "reason": "rate_limit_exceeded"}, 5, "Request refused by Bastion"),
        ({"action": "request.refused", "reason": "prompt_injection_blocked"}, 7, "Request refused by Bastion"),
        ({"action": "key.revoke"}, 3, "Admin change: key.revoke"),
    ],
)
def test_severity_and_name_by_action(data: dict[str, str], severity: int, name: str) -> None:
    assert (severity_of(data), name_of(data["action"])) == (severity, name)


def test_syslog_puts_an_rfc5424_header_before_the_cef_line() -> None:
    entry = stored({"seq": 3, "time": "2026-01-31T12:00:00.000000Z", "action": "request.refused"})
    line = syslog(entry, host="gw1")
    assert line == b"<108>1 2026-01-31T12:00:00.000000Z gw1 bastion - 3 - " + cef(entry)


def test_entries_stream_in_seq_order_in_batches(make_services: Callable[..., Services], database_url: str) -> None:
    engine = make_services(database_url).engine
    fill(engine, 23)
    streamed = list(stored_entries(engine, batch=5))
    assert [entry.seq for entry in streamed] == list(range(23))
    assert all(entry.leaf == leaf_hash(entry.text.encode()).hex() for entry in streamed)
    assert [entry.seq for entry in stored_entries(engine, start=20, batch=5)] == [20, 21, 22]
    lines = list(export(stored_entries(engine), "jsonl"))
    assert lines == [entry.text.encode() + b"\n" for entry in streamed]


@pytest.mark.parametrize(
    ("wanted", "seqs"),
    [
        (EntryFilter(project="alpha", limit=1000), list(range(0, 30, 2))),
        (EntryFilter(action="request.refused", limit=1000), list(range(0, 30, 3))),
        (EntryFilter(status=403, project="beta", limit=1000), [3, 9, 15, 21, 27]),
        (EntryFilter(actor="service_account:bot-1", after=20, limit=1000), [21, 23, 25, 27, 29]),
        (EntryFilter(since=START + timedelta(minutes=5), until=START + timedelta(minutes=8)), [5, 6, 7]),
        (EntryFilter(request_id="req_0017"), [17]),
    ],
)
def test_entries_are_filtered(
    make_services: Callable[..., Services], database_url: str, wanted: EntryFilter, seqs: list[int]
) -> None:
    engine = make_services(database_url).engine
    fill(engine, 30)
    found, more = find_entries(engine, wanted)
    assert [entry.seq for entry in found] == seqs
    assert not more


def test_pages_follow_the_cursor_to_the_end(make_services: Callable[..., Services]) -> None:
    engine = make_services().engine
    fill(engine, 30)
    seen: list[int] = []
    after = None
    while True:
        found, more = find_entries(engine, EntryFilter(project="alpha", after=after, limit=4))
        seen += [entry.seq for entry in found]
        if not more:
            break
        after = found[-1].seq
    assert seen == list(range(0, 30, 2))
