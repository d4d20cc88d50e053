"""The STAC API over pgstac, in two parts that never import each other.

- `serving/` and `app` (its public factory: `uvicorn stac_api.app:create_app --factory`):
  stac-fastapi-pgstac, configured by `serving.settings`;
- `loading/`: STAC objects into pgstac (`loading.ingest`);
- `db` (both): the DSN parser, pools, the database check and migration, with
  `search_order`, the index migration adds.
"""

import logging


class _ImportTimeDefaultsFilter(logging.Filter):
    # stac_fastapi.types.core builds an ApiSettings() at import time, which warns that
    # the stock title/description are in use; ours are set by stac_api.serving.settings.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Using default values for stac_fastapi_title")


logging.getLogger("stac_fastapi.types.config").addFilter(_ImportTimeDefaultsFilter())
