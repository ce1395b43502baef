"""Event log, routing and delivery to subscribers and partner servers."""
