"""What a caller may do and how much of it: rate limits, budgets and (later) data policy rules."""
