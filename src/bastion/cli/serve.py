"""``bastion serve`` and ``bastion demo``: start the gateway (uvicorn with uvloop and httptools)."""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from bastion.app import create_app
from bastion.cli.common import ConfigOption, fail, settings_or_exit
from bastion.config import FileConfig, ProjectConfig, ProviderConfig, Settings, settings_from
from bastion.errors import BastionError
from bastion.obs import logs
from bastion.routing.catalog import Catalog
from bastion.routing.providers import check_credentials
from bastion.services import open_services

if TYPE_CHECKING:
    from pathlib import Path

HostOption = Annotated[str | None, typer.Option("--host", help="Address to listen on (default: server.host).")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on (default: server.port).")]

DEMO_PROJECT = "demo"


def _check_startable(settings: Settings) -> None:
    """Fail before listening: the store opens, a provider is configured (in the file or over the admin API),
    and every provider of the file has what it needs (e.g. its key)."""
    try:
        services = open_services(settings)
        try:
            stored = Catalog(services.engine).load().providers
        finally:
            services.close()
        if not settings.file.providers and not stored:
            raise fail(
                f"{settings.source}: no providers are configured; add one under 'providers:' (see "
                "examples/minimal.yaml), or over the admin API (POST /admin/v1/providers) of a running gateway"
            )
        for provider in settings.file.providers:
            check_credentials(provider, os.environ)
    except BastionError as exc:
        raise fail(exc.message) from exc


def _keep_gc_off_the_request_path() -> None:
    """Freeze the objects that live as long as the process, and collect young objects less often.

    A request allocates a few hundred short-lived objects that reference counting frees. With the
    default threshold (700) the cyclic collector still runs every few requests, promotes the objects
    of the requests in flight, and so every second or so walks the ~100k objects of the libraries
    imported at start (60-120 ms each under load: the p99 of bench/overhead.py at concurrency 32).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _run(settings: Settings, host: str | None, port: int | None) -> None:
    logs.configure(os.environ.get("BASTION_LOG_LEVEL", "INFO"))
    app = create_app(settings)
    _keep_gc_off_the_request_path()
    uvicorn.run(
        app,
        host=host or settings.server.host,
        port=port or settings.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # Bastion decides which X-Forwarded-For to believe (server.trusted_proxies)
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def serve(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Run the gateway with the providers and projects of the config file."""
    settings = settings_or_exit(config)
    _check_startable(settings)
    _run(settings, host, port)


def demo_settings() -> Settings:
    """The demo: one project and the local ``echo`` model, SQLite under ./.bastion/."""
    file = FileConfig(
        organization="demo",
        providers=[ProviderConfig(name="local", kind="echo", models={"echo-1": "echo-1"})],
        projects=[ProjectConfig(name=DEMO_PROJECT, environment="sandbox")],
    )
    return settings_from(file, "<demo>", dict(os.environ))


def demo(host: HostOption = None, port: PortOption = None) -> None:
    """Start Bastion with a demo project, a fresh demo key and the echo model."""
    settings = demo_settings()
    try:
        opened = open_services(settings)
        _record, plaintext = opened.keys.create(DEMO_PROJECT, name="demo")
        opened.close()
    except BastionError as exc:
        raise fail(exc.message) from exc
    url = f"http://{host or settings.server.host}:{port or settings.server.port}/v1"
    typer.echo(_banner(url, plaintext, settings.home))
    _run(settings, host, port)


def _banner(url: str, key: str, home: Path) -> str:
    return f"""
Bastion demo — the echo model answers with exactly what would have left your network.

  base URL   {url}
  API key    {key}    (shown once; data under {home}/)

  from openai import OpenAI
  client = OpenAI(base_url="{url}", api_key="{key}")
  print(client.chat.completions.create(model="echo-1", messages=[{{"role": "user", "content": "hi"}}]))

Stop with Ctrl-C.
"""
