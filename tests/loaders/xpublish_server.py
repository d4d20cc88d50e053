"""Serve two sample datasets with xpublish (run as a script by tests/loaders/test_xpublish.py).

`python xpublish_server.py PORT zarr-v2|zarr-v3|none`: Zarr v2 from the zarr plugin built
into xpublish <= 0.4, Zarr v3 from the xpublish-zarr plugin (xpublish 0.5 has no zarr plugin
of its own), or no zarr plugin at all. Plugins are named explicitly: with both installed, entry points would pick one.
Its own process, so that an older xpublish can be put first on PYTHONPATH.
"""

import sys

import uvicorn
import xpublish
from xpublish.plugins.included.dataset_info import DatasetInfoPlugin

from zarr_stac.samples import cmip6_like, era_like_daily

DATASETS = {"era-daily": era_like_daily, "cmip6-tas": lambda: cmip6_like("ModelB", "ssp585", "tas")}


def zarr_plugin(generation: str):
    if generation == "zarr-v2":
        from xpublish.plugins.included.zarr import ZarrPlugin
    else:
        from xpublish_zarr.plugin import ZarrPlugin
    return ZarrPlugin()


def main() -> None:
    port, generation = int(sys.argv[1]), sys.argv[2]
    plugins = {"dataset_info": DatasetInfoPlugin()}
    if generation != "none":
        plugins["zarr"] = zarr_plugin(generation)
    rest = xpublish.Rest({name: make() for name, make in DATASETS.items()}, plugins=plugins)
    print(f"xpublish {xpublish.__version__} serving {generation}", flush=True)
    uvicorn.run(rest.app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
