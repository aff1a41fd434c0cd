"""Stand-ins for what cannot run here (OpenAI's servers), each run in its own process."""
