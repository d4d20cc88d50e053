"""Settings of the STAC API: stac-fastapi-pgstac's own, plus one database URL.

Everything stac-fastapi-pgstac reads from the environment keeps its name
(`STAC_FASTAPI_TITLE`, `STAC_FASTAPI_DESCRIPTION`, `STAC_FASTAPI_LANDING_ID`,
`CORS_ORIGINS`, `ENABLED_EXTENSIONS`, `ROOT_PATH`, `ENABLE_TRANSACTIONS_EXTENSIONS`,
...). Ours: `DATABASE_URL` (one URL instead of `PGHOST`, `PGUSER`, ...),
`MAX_PAGE_SIZE` (largest page a request may ask for) and `TRANSACTIONS_TOKEN`
(the bearer token write requests must carry; transactions are off by default).
"""

from __future__ import annotations

from importlib.metadata import version

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from stac_fastapi.pgstac.config import PostgresSettings
from stac_fastapi.pgstac.config import Settings as PgstacApiSettings

from common.stac import DEFAULT_CATALOG_DESCRIPTION, DEFAULT_CATALOG_ID

from ..db import parse_dsn


class Settings(PgstacApiSettings):
    # The landing page's title has always been the bare id, not the static catalogue's
    # DEFAULT_CATALOG_TITLE ("zarr-stac catalogue"): clients and tests/stac_api/test_api.py see it.
    stac_fastapi_title: str = DEFAULT_CATALOG_ID
    stac_fastapi_description: str = DEFAULT_CATALOG_DESCRIPTION
    stac_fastapi_landing_id: str = DEFAULT_CATALOG_ID
    stac_fastapi_version: str = version("zarr-stac")

    database_url: SecretStr | None = None
    # Largest page any request may ask for (items and collections): protects the database.
    max_page_size: int = Field(1000, ge=1, le=10_000)
    # Bearer token that transaction requests must carry; required when transactions are on.
    transactions_token: SecretStr | None = None

    # Configuration comes from the environment only: a stray .env in the working
    # directory (docker compose keeps one) must not change the API. A validation error
    # does not quote its input: that is every setting, DATABASE_URL's password included.
    model_config = SettingsConfigDict(env_file=None, extra="allow", hide_input_in_errors=True)

    @model_validator(mode="after")
    def _transactions_need_a_token(self) -> Settings:
        if self.enable_transactions_extensions and not (
            self.transactions_token and self.transactions_token.get_secret_value()
        ):
            raise ValueError(
                "ENABLE_TRANSACTIONS_EXTENSIONS is on but TRANSACTIONS_TOKEN is not set: "
                "write endpoints would be open to anyone"
            )
        return self

    def postgres_settings(self) -> PostgresSettings:
        """The connection settings stac-fastapi-pgstac's pools take."""
        if self.database_url is None:
            return PostgresSettings()  # PGHOST, PGUSER, PGPASSWORD, PGPORT, PGDATABASE
        # The same parser as `zarr-stac load` (libpq's): a URL or key/value pairs.
        parts = parse_dsn(self.database_url.get_secret_value())
        return PostgresSettings(
            pguser=parts.get("user", ""),
            pgpassword=parts.get("password", ""),
            pghost=parts.get("host", "localhost"),
            pgport=int(parts.get("port", 5432)),
            pgdatabase=parts.get("dbname") or parts.get("user") or "postgres",
        )
