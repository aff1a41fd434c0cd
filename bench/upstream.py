"""A fake OpenAI-compatible upstream for the benchmarks: every POST gets the same canned chat.completion.

Two servers, so the benchmark can pick the faster one by measuring: ``raw`` is an asyncio protocol on
uvloop that parses just enough HTTP/1.1 (keep-alive, Content-Length bodies); ``uvicorn`` is a bare
ASGI app under uvicorn with httptools. Run it as ``python bench/upstream.py --port P [--server S]``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
import uvicorn
import uvloop

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The invoice total is 1,240 EUR.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 231, "completion_tokens": 11, "total_tokens": 242},
        "system_fingerprint": "fp_bench",
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(COMPLETION)).encode())]
RESPONSE = b"HTTP/1.1 200 OK\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS) + b"\r\n"
RESPONSE += COMPLETION


class RawUpstream(asyncio.Protocol):
    """One keep-alive connection: answer each complete request (head + Content-Length body) with RESPONSE."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (request := self._take_request()) is not None:
            self._transport.write(RESPONSE)
            if b"\r\nconnection: close" in request:
                self._transport.close()
                return

    def _take_request(self) -> bytes | None:
        """Remove one whole request from the buffer and return its lower-cased head, or None if incomplete."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self._buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        length = 0
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
        total = end + 4 + length
        if len(self._buffer) < total:
            return None
        del self._buffer[:total]
        return head


async def serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawUpstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same answer as a bare ASGI app: drain the body, send the canned completion."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": COMPLETION})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["raw", "uvicorn"], default="raw")
    args = parser.parse_args()
    if args.server == "raw":
        uvloop.run(serve_raw(args.port))
        return
    uvicorn.run(
        asgi_app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
