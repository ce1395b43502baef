"""Search requests: parsed once, with one meaning for the API and for subscription matching."""
