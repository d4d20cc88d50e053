"""Serving: the parts of the STAC API that `stac_api.app` puts together.

`settings` (environment), `client` (stac-fastapi-pgstac's, with checks), `filters`
(bounds on CQL2), `limits` (bound on request bodies), `errors` (400/503 rather than
500), `security` (bearer token on writes). Nothing here imports `stac_api.loading`; both share only `stac_api.db`.
"""
