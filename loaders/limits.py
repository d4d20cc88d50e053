"""What one untrusted input may cost: bounds that turn a crafted input into one clear error.

Catalogues, tables, references and store metadata come from people we do not control,
and a few bytes can ask for gigabytes: a YAML "billion laughs" (aliases of aliases of
aliases), a CSV header of a million columns, a gzip bomb of one endless line, a
`.zmetadata` of gigabytes, a coordinate that declares 3x10^8 values and stores none.
Each is refused before it is expanded or read, with a one-line reason naming it:

- a document read whole into memory (`read_bounded`, `cat_bounded`): a store's metadata
  document at most `StorageOptions.max_metadata_mb`, an input file (a list, an intake or
  ESM catalogue, a kerchunk JSON reference, the mapping configuration) at most
  `max_input_mb`; only that many bytes (plus one) are ever read;
- YAML (`load_yaml`): safe tags only, at most `YAML_NODES` nodes as written and with
  its aliases expanded, and no alias that refers to a node containing it;
- CSV (`bounded_lines`): a line at most `catalogue.max_row_kb`, read at most that far,
  compressed or not; columns at most `catalogue.max_columns` (see `esm`);
- a coordinate (`coordinate_problem`): its declared size (shape x item size) at most
  `max_coordinate_mb`, decided from its metadata before a byte of it is read;
- a store's hierarchy: at most `MAX_GROUPS` groups.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import IO, Any

import yaml

from .failures import TOO_LARGE

MIB = 1 << 20
# Where each limit is set (mapping configuration; environment, for the command line).
METADATA_SETTING = "storage.max_metadata_mb, ZARR_STAC_MAX_METADATA_MB"
INPUT_SETTING = "storage.max_input_mb, ZARR_STAC_MAX_INPUT_MB"
COORDINATE_SETTING = "storage.max_coordinate_mb, ZARR_STAC_MAX_COORDINATE_MB"
# Nodes a YAML document may have, its aliases expanded. PyYAML's pure-Python loader (libyaml's
# composer crashes on deep nesting) takes ~650 bytes and tens of microseconds per node:
# 250,000 nodes (an intake catalogue of ~12,000 sources; each nested catalogue counts on its
# own) cost at most ~160 MB and seconds. A "billion laughs" (9 aliases of 9 aliases ...,
# 10 levels: 10^9 nodes from 1 kB) is refused before anything is expanded.
YAML_NODES = 250_000
# Groups one store may hold: each may have coordinates to read (EOPF products have ~40, a
# HEALPix pyramid one per zoom level); a crafted hierarchy of thousands would cost a request each.
MAX_GROUPS = 1000
# Beyond any real expansion; keeps the sizes summed below small integers.
_EXPANSION_CAP = 1 << 62


class TooLarge(Exception):
    """An input or a store beyond one of the limits; the message is the whole reason
    (what, how large, the limit and the setting that raises it). No ValueError: xarray
    takes those for "no consolidated metadata" and would read the store another way."""

    kind = TOO_LARGE


def size_text(count: float) -> str:
    """Bytes as people read them: `512 MiB`, `2.2 GiB`, `900 bytes`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value == int(value) or value >= 100 else f"{value:.1f} {unit}"
    return f"{int(count)} bytes"


def limit_bytes(megabytes: float) -> int:
    return max(1, int(megabytes * MIB))


def read_bounded(handle: IO[bytes], limit: int, what: str, setting: str) -> bytes:
    """All of a binary file handle's bytes, refused (TooLarge) beyond `limit`: at most
    limit + 1 bytes are read, however large the file (or its decompressed stream) is."""
    return _within(handle.read(limit + 1), limit, what, setting)


def _unsatisfiable(exc: BaseException) -> bool:
    """A ranged read of an empty object: S3 and GCS answer 416 (fsspec raises an OSError)."""
    text = str(exc).lower()
    return "not satisfiable" in text or "invalidrange" in text


def cat_bounded_sync(fs: Any, path: str, limit: int, what: str, setting: str) -> bytes:
    """`fs.cat_file(path)` that reads at most limit + 1 bytes (see `cat_bounded`)."""
    if _is_http(fs):
        from fsspec.asyn import sync

        return sync(fs.loop, cat_bounded, fs, path, limit, what, setting)
    try:
        data = fs.cat_file(path, start=0, end=limit + 1)
    except Exception as exc:  # an empty object's 416, whatever the client makes of it
        if not _unsatisfiable(exc):
            raise
        return b""
    return _within(data, limit, what, setting)


async def cat_bounded(fs: Any, path: str, limit: int, what: str, setting: str) -> bytes:
    """`await fs._cat_file(path)` that reads at most limit + 1 bytes: one ranged GET, or over
    HTTP (whose servers may ignore the range) a GET whose body is read no further."""
    try:
        if _is_http(fs):
            data = await _http_bounded(fs, path, limit + 1)
        else:
            data = await fs._cat_file(path, start=0, end=limit + 1)
    except Exception as exc:  # an empty object's 416, whatever the client makes of it
        if not _unsatisfiable(exc):
            raise
        return b""
    return _within(data, limit, what, setting)


def _within(data: bytes, limit: int, what: str, setting: str) -> bytes:
    if len(data) > limit:
        raise TooLarge(f"{what} is larger than {size_text(limit)}, the limit ({setting})")
    return data


def _is_http(fs: Any) -> bool:
    from fsspec.implementations.http import HTTPFileSystem  # aiohttp: only when used

    return isinstance(fs, HTTPFileSystem)


async def _http_bounded(fs: Any, url: str, most: int) -> bytes:
    """At most `most` bytes of the body at `url` (as fsspec's `_cat_file` GETs it, streamed)."""
    session = await fs.set_session()
    headers = {**fs.kwargs.get("headers", {}), "Range": f"bytes=0-{most - 1}"}
    kwargs = {**fs.kwargs, "headers": headers}
    async with session.get(fs.encode_url(url), **kwargs) as response:
        fs._raise_not_found_for_status(response, url)  # noqa: SLF001 - fsspec's own errors, as cat_file
        chunks, size = [], 0
        while size < most:
            chunk = await response.content.read(min(1 << 20, most - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def bounded_lines(handle: IO[str], limit: int, what: str, setting: str) -> Iterator[str]:
    """The lines of a text handle (for `csv.reader`), each read at most `limit` characters
    far: a longer line (a 10 MB field, a gzip bomb of one endless line) is TooLarge."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(("\n", "\r")):
            raise TooLarge(f"{what}: line {number} is longer than {size_text(limit)}, the limit ({setting})")
        yield line


# -- YAML ---------------------------------------------------------------------------------
def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document that, its aliases expanded, has more than YAML_NODES nodes, or
    whose aliases refer to a node that contains them (an endless document). One pass over
    the distinct nodes: a shared node's expanded size is computed once."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(expanded[id(child)] for child in _children(node))
            expanded[key] = min(total, _EXPANSION_CAP)
            continue
        if key in expanded:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise TooLarge("it is endless: an alias refers to a node that contains it")
            if id(child) not in expanded:
                stack.append((child, False))
    if expanded[id(root)] > YAML_NODES:
        raise TooLarge(f"its aliases expand it to more than {YAML_NODES:,} nodes (a 'billion laughs' document?)")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents of more than YAML_NODES nodes, as written
    (counted while they are composed) or with their aliases expanded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._nodes += 1
        if self._nodes > YAML_NODES:
            raise TooLarge(f"it has more than {YAML_NODES:,} nodes")
        return super().compose_node(parent, index)

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, refusing (TooLarge) a document of more than YAML_NODES nodes
    (aliases expanded), one that refers to itself, or one nested too deeply to read;
    syntax errors raise yaml.YAMLError as safe_load does."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise TooLarge("it is nested too deeply to be read") from None


# -- coordinates ----------------------------------------------------------------------------
def coordinate_problem(name: str, shape: tuple[int, ...], itemsize: int, dtype: str, limit: int) -> str | None:
    """Why the coordinate `name` may not be read (its declared size is beyond `limit`), or None."""
    count = math.prod(int(s) for s in shape)
    size = count * max(int(itemsize), 1)
    if size <= limit:
        return None
    return (
        f"coordinate {name!r} declares {count:,} {dtype} values ({size_text(size)}), more than the "
        f"{size_text(limit)} a coordinate may hold ({COORDINATE_SETTING})"
    )
