from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.gateway.sse import EventSplitter, data_of, frame, is_done

EVENTS = [
    b'data: {"id":"1","choices":[{"delta":{"content":"Hel"}}]}\n\n',
    b'data: {"id":"1","choices":[{"delta":{"content":"lo\\n"}}]}\n\n',
    b": keep-alive comment\n\n",
    b"event: message\r\ndata: line one\r\ndata: line two\r\n\r\n",
    b"data: [DONE]\n\n",
]
STREAM = b"".join(EVENTS)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_split_gives_the_same_whole_events(cuts: list[int]) -> None:
    splitter = EventSplitter()
    events = [event for chunk in split_at(STREAM, cuts) for event in splitter.feed(chunk)]
    assert events == EVENTS
    assert splitter.pending == b""


def test_one_byte_at_a_time() -> None:
    splitter = EventSplitter()
    events = [event for i in range(len(STREAM)) for event in splitter.feed(STREAM[i : i + 1])]
    assert events == EVENTS


def test_unfinished_event_stays_pending() -> None:
    splitter = EventSplitter()
    assert list(splitter.feed(b"data: partial")) == []
    assert splitter.pending == b"data: partial"


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (b"data: hello\n\n", b"hello"),
        (b"data:hello\n\n", b"hello"),
        (b"data: a\ndata: b\n\n", b"a\nb"),
        (b"event: ping\n\n", None),
        (b": comment\n\n", None),
        (b"data: [DONE]\r\n\r\n", b"[DONE]"),
    ],
)
def test_data_of(event: bytes, data: bytes | None) -> None:
    assert data_of(event) == data


@given(st.binary().filter(lambda b: b"\r" not in b))
def test_frame_round_trips(data: bytes) -> None:
    event = frame(data)
    assert event.endswith(b"\n\n")
    assert list(EventSplitter().feed(event)) == [event]
    assert data_of(event) == data


def test_done() -> None:
    assert is_done(frame(b"[DONE]"))
    assert not is_done(frame(b"{}"))
