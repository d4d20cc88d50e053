"""Settings of the STAC API: stac-fastapi-pgstac's own, plus one database URL.

Everything stac-fastapi-pgstac reads from the environment keeps its name
(`STAC_FASTAPI_TITLE`, `STAC_FASTAPI_DESCRIPTION`, `STAC_FASTAPI_LANDING_ID`,
`CORS_ORIGINS`, `ENABLED_EXTENSIONS`, `ROOT_PATH`, `ENABLE_TRANSACTIONS_EXTENSIONS`,
...). Ours: `DATABASE_URL` (one URL instead of `PGHOST`, `PGUSER`, ...),
`MAX_PAGE_SIZE` (largest page a request may ask for), `MAX_BODY_SIZE` (largest
request body, in bytes: 413 beyond it, before it is read in full), `STATEMENT_TIMEOUT`
(seconds a read request's query may run in PostgreSQL before it is stopped; 0: no
limit), `NARROW_SEARCHES` (narrow searches that name no collection before pgstac
plans them; on unless `false`) and `TRANSACTIONS_TOKEN` (the bearer token write requests must carry, at least
16 characters; transactions are off by default).
"""

from __future__ import annotations

from importlib.metadata import version

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from stac_fastapi.pgstac.config import PostgresSettings, ServerSettings
from stac_fastapi.pgstac.config import Settings as PgstacApiSettings

from zarr_stac.common.stac import DEFAULT_CATALOG_DESCRIPTION, DEFAULT_CATALOG_ID

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
    # Largest request body the API reads, in bytes (1 MiB holds a search with a detailed
    # polygon): 413 as soon as Content-Length or the bytes received pass it (serving/limits.py).
    max_body_size: int = Field(1_048_576, ge=1024)
    # Seconds one query of a read request may run before PostgreSQL stops it (0: no limit):
    # without it, one anonymous search kept a backend busy for minutes after the client left.
    statement_timeout: float = Field(30.0, ge=0)
    # Narrow a search that names no collection to the collections whose bounds can match it
    # (serving/narrowing.py) before pgstac plans it: same results, fewer partitions.
    narrow_searches: bool = True
    # Bearer token that transaction requests must carry; required when transactions are on.
    transactions_token: SecretStr | None = None

    # Configuration comes from the environment only: a stray .env in the working
    # directory (docker compose keeps one) must not change the API. A validation error
    # does not quote its input: that is every setting, DATABASE_URL's password included.
    model_config = SettingsConfigDict(env_file=None, extra="allow", hide_input_in_errors=True)

    @model_validator(mode="after")
    def _transactions_need_a_token(self) -> Settings:
        token = self.transactions_token.get_secret_value() if self.transactions_token else ""
        if self.enable_transactions_extensions and not token:
            raise ValueError(
                "ENABLE_TRANSACTIONS_EXTENSIONS is on but TRANSACTIONS_TOKEN is not set: "
                "write endpoints would be open to anyone"
            )
        if token and (problem := weak_token(token)):
            # The message says why, never what: the token is a secret.
            raise ValueError(f"TRANSACTIONS_TOKEN is too weak: {problem}")
        return self

    def postgres_settings(self, *, writes: bool = False) -> PostgresSettings:
        """The connection settings stac-fastapi-pgstac's pools take. The read pool's
        connections carry `statement_timeout`; the write pool's (transactions, behind the
        token) do not: a bulk insert may take longer than any search should."""
        server_settings = ServerSettings()
        if not writes and self.statement_timeout:
            # Sent with each new connection (asyncpg's server_settings): no extra round trip.
            server_settings = ServerSettings(statement_timeout=str(max(1, round(self.statement_timeout * 1000))))
        if self.database_url is None:
            # PGHOST, PGUSER, PGPASSWORD, PGPORT, PGDATABASE
            return PostgresSettings(server_settings=server_settings)
        # The same parser as `zarr-stac load` (libpq's): a URL or key/value pairs.
        parts = parse_dsn(self.database_url.get_secret_value())
        return PostgresSettings(
            pguser=parts.get("user", ""),
            pgpassword=parts.get("password", ""),
            pghost=parts.get("host", "localhost"),
            pgport=int(parts.get("port", 5432)),
            pgdatabase=parts.get("dbname") or parts.get("user") or "postgres",
            server_settings=server_settings,
        )


MIN_TOKEN_LENGTH = 16


def weak_token(token: str) -> str | None:
    """Why a transactions token is too easy to guess or to get wrong, or None."""
    if token != token.strip():
        # A stray space or newline from a file or an .env line: clients would never send it.
        return "it begins or ends with whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"use at least {MIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
    return None
