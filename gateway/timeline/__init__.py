"""Read-only views for care coordinators over the store."""
