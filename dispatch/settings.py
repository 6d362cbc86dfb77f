"""The service's settings, read from `COOP_*` environment variables (see the README's table)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEV_ADMIN_TOKEN = "dev-admin-token-change-me"


def _default_data_dir() -> Path:
    return Path(".var").absolute()


class Settings(BaseSettings):
    """Every knob of the service; the agreement's terms are not here, they are voted on."""

    model_config = SettingsConfigDict(env_prefix="COOP_", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    redis_url: str = ""
    admin_token: str = DEV_ADMIN_TOKEN
    service_area: Path = PACKAGE_DIR / "data" / "montreal.geojson"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = 10
    db_max_overflow: int = 20
    # Background work (matcher, automatic closes, expiries); tests drive them explicitly.
    background_tasks: bool = True

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        data_dir = self.data_dir.absolute()
        self.data_dir = data_dir
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://coop@/coop?host={(data_dir / 'pg')}"
        if not self.redis_url:
            self.redis_url = f"unix://{data_dir / 'redis' / 'redis.sock'}"
        if self.env == "production" and (
            self.admin_token == DEV_ADMIN_TOKEN or len(self.admin_token) < 24
        ):
            raise ValueError(
                "COOP_ADMIN_TOKEN must be set to a random secret of at least 24 characters "
                "in production"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
