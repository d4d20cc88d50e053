from .cli import app

app(prog_name="zarr-stac")
