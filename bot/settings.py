"""Settings from the environment and ``.env`` (SPEC §2), built once in the entry point and passed down.

The ``.env`` file read is the one beside the config file (``$ACCESSBOT_CONFIG``, default ``./accessbot.yml``),
so a unit file or container that points at ``/etc/accessbot/accessbot.yml`` finds ``/etc/accessbot/.env``
whatever its working directory. Variables set in the environment win over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logs import LogFormat, LogLevel
from bot.security.crypto import SecretBox, key_file_for_sqlite, load_or_create_key

DEFAULT_CONFIG = "./accessbot.yml"

POSTGRES_NEEDS_A_KEY = (
    "ACCESSBOT_ENCRYPTION_KEY is required with PostgreSQL (generate one with "
    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    config_path: str = Field(default=DEFAULT_CONFIG, alias="ACCESSBOT_CONFIG")
    database_url: str = Field(default="sqlite:///./accessbot.db", alias="ACCESSBOT_DATABASE_URL")
    encryption_key: SecretStr | None = Field(default=None, alias="ACCESSBOT_ENCRYPTION_KEY")
    tick_seconds: float = Field(default=1.0, gt=0, le=60, alias="ACCESSBOT_TICK_SECONDS")
    worker_threads: int = Field(default=8, ge=1, le=64, alias="ACCESSBOT_WORKER_THREADS")
    database_pool_size: int | None = Field(default=None, ge=1, le=200, alias="ACCESSBOT_DATABASE_POOL_SIZE")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", alias="ACCESSBOT_PAGERDUTY_API_URL")
    opsgenie_api_url: str = Field(default="https://api.opsgenie.com", alias="ACCESSBOT_OPSGENIE_API_URL")
    reconcile_seconds: float = Field(default=60.0, ge=1, le=86400, alias="ACCESSBOT_RECONCILE_SECONDS")
    log_level: LogLevel = Field(default="INFO", alias="ACCESSBOT_LOG_LEVEL")
    log_format: LogFormat = Field(default="text", alias="ACCESSBOT_LOG_FORMAT")
    health_port: int | None = Field(default=None, ge=1, le=65535, alias="ACCESSBOT_HEALTH_PORT")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process: the environment, then the ``.env`` beside the config file."""
        environ = os.environ if environ is None else environ
        env_file = Path(environ.get("ACCESSBOT_CONFIG") or DEFAULT_CONFIG).parent / ".env"
        return cls(_env_file=env_file if env_file.is_file() else None)  # type: ignore[call-arg]

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case_insensitive(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            levels = ("debug", "info", "warning", "error", "critical")
            return value.upper() if value.lower() in levels else value.lower()
        return value

    @field_validator("health_port", mode="before")
    @classmethod
    def _blank_port_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token", "encryption_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """``SLACK_APP_TOKEN=`` (an empty line in ``.env``) means unset, not an empty secret."""
        return None if isinstance(value, str) and not value.strip() else value

    def secret_box(self) -> SecretBox:
        """The encryption keys: from the environment, or a 0600 key file beside a SQLite database.

        The keys must be the database's (see :mod:`bot.security.installation`): another key, or a new key file where the
        database already holds encrypted data, is refused with one line that says what to do.
        """
        from bot.security.installation import check_encryption_key, refuse_new_key_for_encrypted_data
        from store.db import Database

        sqlite = self.database_url.startswith("sqlite")
        if self.encryption_key is None and not sqlite:
            raise ValueError(POSTGRES_NEEDS_A_KEY)
        db = Database(self.database_url)
        try:
            db.upgrade()
            if self.encryption_key is not None:
                box, source = SecretBox.from_setting(self.encryption_key.get_secret_value()), "ACCESSBOT_ENCRYPTION_KEY"
            else:
                key_file = key_file_for_sqlite(self.database_url)
                if not key_file.exists():
                    refuse_new_key_for_encrypted_data(db, key_file)
                box, source = SecretBox([load_or_create_key(key_file)]), f"the key file {key_file}"
            check_encryption_key(db, box, source=source)
            return box
        finally:
            db.dispose()
