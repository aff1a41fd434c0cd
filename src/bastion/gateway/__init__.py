"""The request path: one pipeline (``pipeline.py``) calling small, separately tested steps."""
