"""The thinnest pass-through proxy, for the stack experiment (bench/stack.py): no checks, no logs, no metrics.

``make_app(client, upstream_url)`` returns an ASGI app that reads the body, POSTs it unchanged to the
upstream with ``aiohttp`` or ``httpx`` and returns the answer; ``app_from_env`` is the factory a server
starts (``BENCH_CLIENT``, ``BENCH_UPSTREAM``). ``python bench/proxy.py --port P`` serves it with uvicorn.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Protocol

import aiohttp
import httpx
import uvicorn

JSON = {"Content-Type": "application/json"}


class Client(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes, bytes]: ...


class AiohttpClient:
    def __init__(self, url: str) -> None:
        self._url = url
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=512)
        self._session = aiohttp.ClientSession(connector=connector)

    async def post(self, body: bytes) -> tuple[int, bytes, bytes]:
        async with self._session.post(self._url, data=body, headers=JSON) as response:
            content = await response.read()
            return response.status, content, response.headers.get("Content-Type", "").encode()


class HttpxClient:
    def __init__(self, url: str) -> None:
        self._url = url
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        self._client = httpx.AsyncClient(limits=limits, timeout=60.0)

    async def post(self, body: bytes) -> tuple[int, bytes, bytes]:
        response = await self._client.post(self._url, content=body, headers=JSON)
        return response.status_code, response.content, response.headers.get("content-type", "").encode()


CLIENTS: dict[str, type[AiohttpClient | HttpxClient]] = {"aiohttp": AiohttpClient, "httpx": HttpxClient}


class PassThrough:
    """ASGI (and granian RSGI) app; the client is made on the first request, inside the server's event loop."""

    def __init__(self, client: str, url: str) -> None:
        self._make = lambda: CLIENTS[client](url)
        self._client: Client | None = None

    def _get(self) -> Client:
        if self._client is None:
            self._client = self._make()
        return self._client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        status, body, content_type = await self._get().post(b"".join(chunks))
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        status, body, content_type = await self._get().post(await protocol())
        protocol.response_bytes(status, [("content-type", content_type.decode())], body)


def make_app(client: str, upstream_url: str) -> PassThrough:
    return PassThrough(client, upstream_url)


def app_from_env() -> PassThrough:
    return make_app(os.environ["BENCH_CLIENT"], os.environ["BENCH_UPSTREAM"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app_from_env(),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
