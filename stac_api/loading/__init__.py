"""Loading: STAC Collections and Items into pgstac, with pypgstac.

`ingest` (a load: `Ingest`, `load`) puts together `documents` (the JSON pgstac
stores), `pending` (items waiting for their collection's batch, in memory then on
disk), `workers` (parallel loads, one partition each) and `queryables`. Nothing
here imports `stac_api.serving`; both share only `stac_api.db`.
"""
