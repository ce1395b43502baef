"""Typed settings read from the environment (prefix ``GATEWAY_``), checked at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

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
    db_pool_size: int = Field(
        default=20, ge=1,
        description="PostgreSQL connections kept per process; also the number of threads "
        "that run blocking request work, so requests never open and close connections.")
    freeze_gc: bool = Field(
        default=True,
        description="At start-up, move everything loaded so far out of the garbage "
        "collector's reach (gc.freeze): shorter pauses under load.")
    prepare_processes: int = Field(
        default=0, ge=0,
        description="Worker processes that validate and index request bodies beside the "
        "server process (0: in the server process, the faster choice since validation is "
        "compiled: handing a body to another process costs more than checking it).")
    log_level: str = "info"

    # -- sync: event log and delivery (README "Subscriptions and delivery") --------------
    event_retention_days: float = Field(
        default=30, gt=0, description="Days events stay in each subscription's log.")
    delivery_in_process: bool = Field(
        default=True, description="Run a delivery worker inside `gateway serve`.")
    delivery_poll_seconds: float = Field(
        default=0.25, gt=0, description="How often an idle worker looks for work.")
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_lease_seconds: float = Field(
        default=60.0, gt=0,
        description="How long a claimed notification is reserved for its worker; after a "
        "worker crash it is sent again once this has passed. Keep above the timeout.")
    delivery_batch_size: int = Field(
        default=100, ge=1, description="Notifications one worker sends at once.")
    delivery_connections_per_destination: int = Field(
        default=8, ge=1,
        description="Keep-alive HTTP connections a worker keeps open to one destination.")
    delivery_backoff_base_seconds: float = Field(default=1.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_give_up_seconds: float = Field(
        default=24 * 3600.0, gt=0,
        description="Retry a failing destination this long before marking it in error.")
    delivery_client_error_attempts: int = Field(
        default=5, ge=1, description="Attempts of a notification the receiver refuses (4xx).")
    identifier_system: str | None = Field(
        default=None,
        description="Identifier system the gateway gives resources it writes into other "
        "FHIR servers when they carry no business identifier (value `Type/id`); default: "
        "the base URL, else urn:fhir-care-gateway:local.")
    partner_pull_seconds: float = Field(
        default=60.0, gt=0, description="How often a worker polls pull partners.")
    delivery_signing_secrets: list[str] = Field(
        default_factory=list,
        description="HMAC-SHA256 secrets (newest first, at most two in use) signing bodies.")

    # -- coordination: transition workflows (README "Transition workflows") -------------
    workflow_sweep_seconds: float = Field(
        default=300.0, gt=0,
        description="How often each worker flags overdue follow-up Tasks.")

    # -- security: README "Security" ----------------------------------------------------
    auth: Literal["off", "smart"] = Field(
        default="off",
        description="off: no authorization (development and demo only, announced loudly at "
        "start-up); smart: SMART Backend Services tokens required on every API call.")
    auth_signing_key: str | None = Field(
        default=None, description="PEM private key (EC P-384) signing access tokens.")
    auth_signing_key_file: str | None = Field(
        default=None, description="File holding that PEM key (preferred over the variable).")
    auth_token_seconds: int = Field(
        default=300, ge=30, le=3600, description="Lifetime of an access token.")
    rate_limit_per_second: float = Field(
        default=100.0, ge=0, description="Requests per second per client (0: unlimited).")
    rate_limit_burst: int = Field(default=200, ge=1)
    max_hl7_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest HL7 v2 message (MLLP and HTTP).")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; none: CORS off.")

    # -- people on the coordinator pages: README "Security", "People" -----------------
    session_secret: str | None = Field(
        default=None, description="Key (at least 32 characters) signing session and login "
        "form cookies; without one a random key is made at start-up (sessions end on "
        "restart and are not shared between processes).")
    session_secret_file: str | None = Field(
        default=None, description="File holding that key (preferred over the variable).")
    session_hours: float = Field(
        default=8.0, gt=0, le=168, description="A session ends this long after sign-in.")
    session_cookie_secure: bool = Field(
        default=True, description="Mark cookies Secure (HTTPS only). Turn off only for "
        "development over plain HTTP on a machine of your own.")
    login_failures_per_minute: float = Field(
        default=5.0, gt=0, description="Failed sign-ins allowed per minute, per network "
        "address and per user name (burst of as many), before 429.")
    trusted_user_header: str | None = Field(
        default=None, description="Header naming the signed-in person, set by an "
        "authenticating proxy in front (e.g. X-Forwarded-User). Honoured only when set; "
        "the gateway must then be reachable only through that proxy.")

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "GATEWAY_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @property
    def own_identifier_system(self) -> str:
        """The system of identifiers the gateway gives resources it writes elsewhere."""
        return self.identifier_system or (self.base_url or "").rstrip("/") \
            or "urn:fhir-care-gateway:local"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
