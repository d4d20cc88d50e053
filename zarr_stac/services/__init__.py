"""Local services shared by the demo and the tests: a PostgreSQL cluster and an S3 server."""

from .base import ServiceError, free_port
from .postgres import PostgresCluster, PostgresError, ensure_postgis
from .s3 import LOCAL_CREDENTIALS, S3Server

__all__ = [
    "LOCAL_CREDENTIALS",
    "PostgresCluster",
    "PostgresError",
    "S3Server",
    "ServiceError",
    "ensure_postgis",
    "free_port",
]
