"""Fixtures shared by the integration tests of subscriptions and delivery (sync_support.py):
an app without the in-process worker, its client, and real HTTP receivers."""

from tests.integration.sync_support import api, receiver, sync_app, sync_settings

__all__ = ["api", "receiver", "sync_app", "sync_settings"]
