"""The STAC API over pgstac: settings, app factory, ingest."""

import logging


class _ImportTimeDefaultsFilter(logging.Filter):
    # stac_fastapi.types.core builds an ApiSettings() at import time, which warns that
    # the stock title/description are in use; ours are set by stac_api.settings.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Using default values for stac_fastapi_title")


logging.getLogger("stac_fastapi.types.config").addFilter(_ImportTimeDefaultsFilter())
