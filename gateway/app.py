"""``gateway.app:create_app`` — the ASGI application factory (``uvicorn --factory``)."""

from gateway.api.app import create_app

__all__ = ["create_app"]
