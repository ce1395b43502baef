"""Authorization: SMART Backend Services clients and tokens, scopes, audit, rate limits."""
