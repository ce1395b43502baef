"""Typed settings read from the environment (prefix ``GATEWAY_``), checked at start-up."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the gateway; one instance per process."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./gateway.db",
        description="SQLAlchemy URL; sqlite:///file.db (default) or postgresql+psycopg://...",
    )
    base_url: str | None = Field(
        default=None,
        description="Public base of the FHIR API (e.g. https://gw.example.org/fhir); "
        "taken from each request when unset.",
    )
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_include_results: int = Field(default=1000, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    prepare_processes: int = Field(
        default_factory=lambda: 1 if (os.cpu_count() or 1) > 1 else 0, ge=0,
        description="Worker processes that validate and index request bodies beside the "
        "server process (0: in the server process).")
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "GATEWAY_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
