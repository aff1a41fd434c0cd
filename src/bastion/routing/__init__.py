"""Where a request goes: upstream providers and the router that picks one for a model."""
