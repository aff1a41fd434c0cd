"""The server secret that keys API-key hashes: from ``BASTION_SECRET_KEY`` or a 0600 file under the home."""

from __future__ import annotations

import os
import secrets
import stat
from typing import TYPE_CHECKING

from bastion.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

FILE_NAME = "secret_key"


def load_secret(env_value: str | None, home: Path) -> bytes:
    """Return the secret, creating ``home/secret_key`` (mode 0600) on first use when none is given."""
    if env_value:
        if len(env_value) < 32:
            raise ConfigError(
                "BASTION_SECRET_KEY must be at least 32 characters; generate one with 'openssl rand -hex 32'"
            )
        return env_value.encode()
    path = home / FILE_NAME
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users; restrict it with 'chmod 600 {path}'")
    value = path.read_text().strip()
    if len(value) < 32:
        raise ConfigError(f"{path} holds fewer than 32 characters; delete it to generate a new secret")
    return value.encode()
