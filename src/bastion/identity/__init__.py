"""Who is calling: API keys, their keyed hashes, the server secret and the key cache."""
