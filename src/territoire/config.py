"""Settings, read from the environment (prefix TERRITOIRE_) and an optional TOML file.

Precedence: explicit arguments, then environment, then the TOML file named by
TERRITOIRE_CONFIG (or ./territoire.toml when present), then defaults.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "territoire.toml"


def _config_file() -> Path | None:
    named = os.environ.get("TERRITOIRE_CONFIG")
    if named:
        return Path(named)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERRITOIRE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("territoire-data"), description="SQLite file, uploads, lake"
    )
    database_url: str = Field(default="", description="Empty means SQLite in the data folder")
    secret_key: str = Field(default="", description="Empty means generated once in the data folder")
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""
    tile_url: str = Field(
        default="",
        description="XYZ tile URL template for the maps; empty shows a plain background",
    )
    tile_attribution: str = ""
    default_language: str = "fr"
    session_max_age_seconds: int = 8 * 3600
    max_body_bytes: int = 5 * 1024 * 1024
    cookie_secure: bool = False
    mqtt_url: str = ""
    # TLS for mqtts:// URLs: the broker's CA (empty: the system's) and a client certificate.
    mqtt_ca_file: str = ""
    mqtt_cert_file: str = ""
    mqtt_key_file: str = ""
    log_level: str = "info"
    # Outgoing e-mail (notifications). Empty host: nothing is sent, the outbox keeps it.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "territoire@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    # Citizen requests: changes within this window go out as one digest e-mail.
    notification_digest_seconds: int = 600
    notification_poll_seconds: int = 30
    # Anonymous submissions (web form, Open311) per client address: a token bucket.
    requests_submissions_per_minute: float = 6.0
    requests_submission_burst: int = 5
    requests_max_photo_bytes: int = 4 * 1024 * 1024
    requests_max_photos: int = 3
    # Rule timers (silence, night windows, daily checks) in the web process; 0: off.
    rule_timer_seconds: float = 60.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'territoire.db').resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data folder.

        Keeping it on disk means sessions survive a restart of the embedded default.
        """
        if self.secret_key:
            return self.secret_key
        self.ensure_data_dir()
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Accept the usual postgresql:// form and route it to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
