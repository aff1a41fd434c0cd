"""Kinds ``openai`` and ``openai_compatible``: a server that speaks OpenAI's HTTP API at ``base_url`` (``.../v1``).

:class:`OpenAIProvider` is also the transport of every HTTP kind: timeouts, SSE splitting, error mapping and
the salvage of events buffered when a stream breaks live here once. A kind that differs only in where a call
goes and how it authenticates (Azure) overrides :meth:`~OpenAIProvider.url`, :meth:`~OpenAIProvider.probe_url`
and :meth:`~OpenAIProvider.auth_headers`, nothing else.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar, Self

import aiohttp

from bastion.errors import ConfigError, UpstreamError, UpstreamTimeout
from bastion.gateway.sse import EventSplitter, is_done
from bastion.routing.providers.base import PATHS, Call, Reply, refuse_status

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    from bastion.config import ProviderConfig


class OpenAIProvider:
    """OpenAI itself: ``Authorization: Bearer`` and ``{base_url}/chat/completions``."""

    # Probe answers that still mean "the server is up"; OpenAI always serves /models, so only a 2xx counts.
    PROBE_ALIVE: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession, api_key: str | None) -> None:
        self.name = config.name
        self.config = config
        self._session = session
        self._headers = {"Content-Type": "application/json", **(self.auth_headers(api_key) if api_key else {})}
        timeouts = config.timeouts
        self._first_byte = timeouts.first_byte
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.idle
        )
        # A probe is a small GET: it gets no longer to connect and answer than a call gets for its headers.
        self._probe_timeout = aiohttp.ClientTimeout(
            total=timeouts.connect + timeouts.first_byte, sock_connect=timeouts.connect, sock_read=timeouts.first_byte
        )

    @classmethod
    def build(cls, config: ProviderConfig, session: aiohttp.ClientSession, env: Mapping[str, str]) -> Self:
        return cls(config, session, api_key_of(config, env))

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry Bastion's key for this upstream."""
        return {"Authorization": f"Bearer {api_key}"}

    def url(self, call: Call) -> str:
        """Where ``call`` goes; ``call.model`` is already the upstream's name for the model."""
        return f"{self.config.base_url}{PATHS[call.endpoint]}"

    def probe_url(self) -> str:
        """A cheap, authenticated GET that only a healthy endpoint answers with a 2xx."""
        return f"{self.config.base_url}/models"

    async def send(self, call: Call) -> Reply:
        response = await self._request("POST", self.url(call), call.raw, self._timeout)
        body = await self._read(response)
        content_type = response.headers.get("Content-Type", "application/json")
        refuse_status(self.name, response.status, body, content_type, response.headers)
        return Reply(response.status, body, content_type)

    async def open_stream(self, call: Call) -> AsyncGenerator[bytes, None]:
        response = await self._request("POST", self.url(call), call.raw, self._timeout)
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200:
            refuse_status(self.name, response.status, await self._read(response), content_type, response.headers)
        if not content_type.startswith("text/event-stream"):
            await self._read(response)
            raise UpstreamError(
                f"The upstream provider '{self.name}' did not answer the stream with server-sent events."
            )
        return self._events(response)

    async def probe(self) -> None:
        """Ask the endpoint whether it is up; raise :class:`UpstreamError` when it is not.

        Health checks call this while an endpoint's circuit is open, so that it closes again without
        sending a client's request to an endpoint that is still down.
        """
        response = await self._request("GET", self.probe_url(), None, self._probe_timeout)
        await self._read(response)
        status = response.status
        if 200 <= status < 300 or status in self.PROBE_ALIVE:
            return
        fix = "api_key_env" if status in (401, 403) else "base_url and the upstream's status"
        raise UpstreamError(
            f"The upstream provider '{self.name}' failed its health probe (HTTP {status}); check its {fix}."
        )

    async def close(self) -> None:
        """The shared session is closed by the gateway; nothing of our own to release."""

    async def _request(
        self, method: str, url: str, data: bytes | None, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        try:
            async with asyncio.timeout(self._first_byte):
                return await self._session.request(method, url, data=data, headers=self._headers, timeout=timeout)
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


class OpenAICompatibleProvider(OpenAIProvider):
    """Any other server speaking OpenAI's API (vLLM, Ollama, LiteLLM, a vendor's "OpenAI-compatible" endpoint).

    Calls go exactly as they do to OpenAI, body untouched (Bastion never adds ``stream_options`` or any
    other field a server might not know). The one difference is the probe: not every such server lists
    its models, so a 404 or 405 from ``GET /models`` still means the server is up.
    """

    PROBE_ALIVE: ClassVar[frozenset[int]] = frozenset({404, 405})


def api_key_of(config: ProviderConfig, env: Mapping[str, str]) -> str | None:
    """The upstream key named by ``api_key_env``; a name whose variable is unset stops the start."""
    if not config.api_key_env:
        return None
    api_key = env.get(config.api_key_env)
    if not api_key:
        raise ConfigError(
            f"provider '{config.name}' reads its key from ${config.api_key_env}, which is not set; "
            "export it before starting Bastion"
        )
    return api_key


def _unread(response: aiohttp.ClientResponse) -> bytes:
    """Bytes aiohttp received but no longer hands out once the payload failed (it raises before its buffer)."""
    return b"".join(getattr(response.content, "_buffer", ()))
