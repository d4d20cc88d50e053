"""Benchmarks: zarr-stac against its peers, measured in the same run (`make bench`)."""
