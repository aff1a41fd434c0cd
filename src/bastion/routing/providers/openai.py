"""Kind ``openai``: any server that speaks OpenAI's HTTP API at ``base_url`` (``.../v1``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp

from bastion.errors import ConfigError, UpstreamError, UpstreamTimeout
from bastion.gateway.sse import EventSplitter, is_done
from bastion.routing.providers.base import PATHS, Call, Reply, refuse_status

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    from bastion.config import ProviderConfig


class OpenAIProvider:
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession, api_key: str | None) -> None:
        self.name = config.name
        self.config = config
        self._session = session
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        timeouts = config.timeouts
        self._first_byte = timeouts.first_byte
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.idle
        )

    @classmethod
    def build(cls, config: ProviderConfig, session: aiohttp.ClientSession, env: Mapping[str, str]) -> OpenAIProvider:
        api_key = None
        if config.api_key_env:
            api_key = env.get(config.api_key_env)
            if not api_key:
                raise ConfigError(
                    f"provider '{config.name}' reads its key from ${config.api_key_env}, which is not set; "
                    "export it before starting Bastion"
                )
        return cls(config, session, api_key)

    async def _post(self, call: Call) -> aiohttp.ClientResponse:
        url = f"{self.config.base_url}{PATHS[call.endpoint]}"
        try:
            async with asyncio.timeout(self._first_byte):
                return await self._session.post(url, data=call.raw, headers=self._headers, timeout=self._timeout)
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamTimeout(f"Bastion could not connect to upstream provider '{self.name}' in time.") from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The upstream provider '{self.name}' did not answer within {self._first_byte:g}s; try again later."
            ) from exc
        except aiohttp.ClientError as exc:
            raise self._broken(exc) from exc

    def _broken(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"The upstream provider '{self.name}' stopped answering; try again later.")
        return UpstreamError(
            f"The connection to upstream provider '{self.name}' failed ({type(exc).__name__}); try again later."
        )

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._broken(exc) from exc
        finally:
            response.release()

    async def send(self, call: Call) -> Reply:
        response = await self._post(call)
        body = await self._read(response)
        content_type = response.headers.get("Content-Type", "application/json")
        refuse_status(self.name, response.status, body, content_type, response.headers)
        return Reply(response.status, body, content_type)

    async def open_stream(self, call: Call) -> AsyncGenerator[bytes, None]:
        response = await self._post(call)
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200:
            refuse_status(self.name, response.status, await self._read(response), content_type, response.headers)
        if not content_type.startswith("text/event-stream"):
            await self._read(response)
            raise UpstreamError(
                f"The upstream provider '{self.name}' did not answer the stream with server-sent events."
            )
        return self._events(response)

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
        """Whole events as they arrive; the connection is kept only when the stream finished cleanly."""
        splitter = EventSplitter()
        done = False
        try:
            async for chunk in response.content.iter_any():
                for event in splitter.feed(chunk):
                    done = done or is_done(event)
                    yield event
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The events that arrived before the connection broke still belong to the client.
            for event in splitter.feed(_unread(response)):
                yield event
            raise self._broken(exc) from exc
        finally:
            if done:
                response.release()
            else:
                response.close()
        if not done:
            raise UpstreamError(f"The upstream provider '{self.name}' ended the stream before it finished.")

    async def close(self) -> None:
        """The shared session is closed by the gateway; nothing of our own to release."""


def _unread(response: aiohttp.ClientResponse) -> bytes:
    """Bytes aiohttp received but no longer hands out once the payload failed (it raises before its buffer)."""
    return b"".join(getattr(response.content, "_buffer", ()))
