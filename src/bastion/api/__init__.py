"""The HTTP surface: plain ASGI for the /v1 hot path, health and metrics; no policy lives here."""
