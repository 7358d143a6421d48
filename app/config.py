"""Settings: one typed, cached object read from ``INBOX_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting of the product; each field is the env var ``INBOX_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="INBOX_", extra="ignore", use_attribute_docstrings=True)

    mongodb_url: str | None = None
    """MongoDB connection URL. Unset: `inbox run` starts the embedded database under the data dir (kept across restarts); `web` and `worker` require it. `mongomock://` is an in-process, in-memory quick lane for local unit runs only."""

    mongodb_database: str = "wa_inbox"
    """Database name inside MongoDB."""

    redis_url: str | None = None
    """Redis URL for queues, live events and rate limits. Unset: an embedded Redis under the data dir."""

    secret_key: SecretStr | None = None
    """Key for session signing and encrypting stored secrets. Unset in `run` mode: generated once under the data dir."""

    data_dir: Path = ROOT / "var"
    """Where `run` mode keeps the embedded database and Redis data, the generated secret key and the demo password."""

    public_url: str = "http://localhost:8000"
    """The URL users and Meta reach this server at; used for webhook URLs and secure cookies."""

    host: str = "127.0.0.1"
    """Interface the web server listens on."""

    port: int = 8000
    """Port the web server listens on (`--port` overrides it)."""

    graph_api_url: str = "https://graph.facebook.com"
    """Base URL of Meta's Graph API (point it at `<public_url>/sandbox/graph` to use the sandbox)."""

    graph_api_version: str = "v23.0"
    """Graph API version used for every call."""

    allow_signup: bool = False
    """Let anyone create a new workspace at /signup."""

    admin_email: str | None = None
    """Bootstrap: when no user exists at start, create an admin with this email."""

    admin_password: SecretStr | None = None
    """Bootstrap: the password of that first admin."""

    admin_api_key: SecretStr | None = None
    """Bootstrap: register this exact API key (stored hashed) for that first admin."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level of the structured (JSON in production) logs."""

    log_json: bool = False
    """Log one JSON object per line instead of human-readable lines."""

    audit_retention_days: int = Field(default=365, ge=1)
    """Days the audit log keeps an entry (a worker deletes older ones daily)."""

    session_max_age_hours: int = Field(default=24 * 14, ge=1)
    """How long a browser session stays valid without signing in again."""

    contact_files_keep_days: int = Field(default=30, ge=1)
    """Days the files of a finished contact import (the upload, the refusals report) and of a background
    export are kept; then a worker deletes them (the import's counts stay). An upload never started is
    deleted after the same time."""

    worker_poll_delay: float = Field(default=0.005, gt=0)
    """Seconds an idle worker waits between queue polls; low keeps live updates fast."""

    send_rate_margin: float = Field(default=0.985, gt=0, le=1)
    """Share of a number's messages-per-second the outbox schedules (the rest absorbs jitter; sends
    whose stamps may have bunched are held by the drainer's check of Meta's 1-s window)."""

    send_timeout_seconds: float = Field(default=15.0, gt=0)
    """How long a send waits for Meta's answer before it counts as a timeout (and is retried)."""

    send_retry_window_seconds: float = Field(default=900, gt=0)
    """How long a send keeps being retried on transient errors before it is marked failed."""

    send_max_attempts: int = Field(default=12, ge=1)
    """At most this many attempts per send, whatever the error (code 1 gets two, as Meta advises)."""

    send_backoff_scale: float = Field(default=1.0, gt=0)
    """Multiplies every retry delay (Meta's suggested ones); tests and demos shrink it."""

    recipient_burst: int = Field(default=40, ge=1)
    """Messages one customer may get from a number in a burst before pacing starts (Meta allows ~45)."""

    recipient_interval_seconds: float = Field(default=6.0, gt=0)
    """After the burst, one message per this many seconds to the same customer (avoids 131056)."""

    circuit_failures: int = Field(default=10, ge=1)
    """Consecutive transient send failures that open a number's circuit breaker (sends held)."""

    circuit_open_seconds: float = Field(default=30.0, gt=0)
    """How long the breaker first stays open before a probe send (doubles while probes fail)."""

    worker_metrics_port: int | None = None
    """`inbox worker` serves its Prometheus metrics on this port when set (the web process has /metrics)."""

    allow_private_webhook_targets: bool = False
    """Development only: let event subscriptions call http:// and private, loopback or link-local addresses."""

    event_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long one event delivery waits for the subscriber's answer before it counts as failed."""

    event_webhook_backoff_scale: float = Field(default=1.0, gt=0)
    """Multiplies every event-delivery retry delay (10 s, 30 s, 1 min ... 6 h over 24 h); tests shrink it."""

    presence_timeout_seconds: float = Field(default=300.0, gt=0)
    """An agent with no open inbox tab for this long shows as offline and gets no auto-assigned conversations
    (a tab refreshes its heartbeat in Redis every third of this, at most every 30 s)."""

    api_rate_limit_per_minute: int = Field(default=600, ge=1)
    """Requests per minute each API key may make to /api (shared by every web process, through Redis)."""

    metrics_token: SecretStr | None = None
    """Bearer token a scrape of the web process's /metrics must send. Unset: only local peers
    (127.0.0.1, ::1) may scrape it (a worker's metrics are on INBOX_WORKER_METRICS_PORT)."""

    sandbox_control_from: str = "127.0.0.1,::1"
    """Peers that may use the sandbox's /sandbox/control routes (demo and `inbox sandbox`): they make
    customers write and inject faults. Comma-separated addresses; "*" for anyone."""

    trusted_proxies: str = ""
    """Comma-separated addresses or networks of the reverse proxies in front of us (e.g. 10.0.0.0/8).
    Only their X-Forwarded-For / X-Forwarded-Proto are believed; empty: nobody's (the peer's address
    is the client's). Sign-in throttles and rate limits count by that address."""

    @field_validator("public_url", "graph_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the Secure flag when the product is served over https."""
        return self.public_url.startswith("https://")

    def missing_for_production(self) -> list[str]:
        """The env vars `inbox web` / `inbox worker` need but are unset."""
        required = {
            "INBOX_MONGODB_URL": self.mongodb_url,
            "INBOX_REDIS_URL": self.redis_url,
            "INBOX_SECRET_KEY": self.secret_key,
        }
        return [name for name, value in required.items() if not value]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
