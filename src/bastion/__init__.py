"""Bastion: a self-hosted, OpenAI-compatible compliance gateway for LLM APIs."""

from __future__ import annotations

__version__ = "0.1.0"
