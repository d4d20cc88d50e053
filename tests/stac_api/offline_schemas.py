"""Run stac-api-validator without internet: its JSON schemas come from ../shared/stac-schemas.

stac-api-validator has no option for local schemas. It fetches them in two
places, both patched here (test-only, in this one module): stac-validator's
`fetch_and_parse_file` (requests) and pystac's StacIO (through its documented
`StacIO.set_default` hook). A schema that is not in the folder is an error,
never a download. Usage:

    python -m tests.stac_api.offline_schemas SCHEMA_DIR [stac-api-validator arguments]
"""

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

SCHEMA_HOSTS = {"schemas.stacspec.org", "stac-extensions.github.io", "geojson.org", "proj.org", "api.stacspec.org"}


def local_path(schema_dir: Path, url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname in SCHEMA_HOSTS:
        path = schema_dir / parts.hostname / parts.path.lstrip("/")
        if not path.exists():
            raise FileNotFoundError(f"schema {url} is not in {schema_dir}")
        return path
    return None


def install(schema_dir: Path) -> None:
    import pystac
    import stac_validator.utilities as utilities
    from pystac.stac_io import DefaultStacIO

    fetch = utilities.fetch_and_parse_file

    def fetch_and_parse_file(input_path, headers=None):
        path = local_path(schema_dir, input_path) if isinstance(input_path, str) else None
        return json.loads(path.read_text()) if path else fetch(input_path, headers)

    utilities.fetch_and_parse_file = fetch_and_parse_file

    class LocalSchemaStacIO(DefaultStacIO):
        def read_text_from_href(self, href: str) -> str:
            path = local_path(schema_dir, href)
            return path.read_text() if path else super().read_text_from_href(href)

    pystac.StacIO.set_default(LocalSchemaStacIO)


if __name__ == "__main__":
    install(Path(sys.argv.pop(1)))
    from stac_api_validator.__main__ import main

    main(prog_name="stac-api-validator")
