"""Where each store goes in the catalogue: its collection, its item id.

The default layout makes one collection per top-level prefix below the crawl root
and names each item after the rest of its path, so
`s3://bucket/cmip6/ModelA/historical/r1i1p1f1/tas/gn.zarr` crawled from
`s3://bucket` becomes item `ModelA.historical.r1i1p1f1.tas.gn` of collection
`cmip6`. Stores directly below the root go to a collection named after the root.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .storage import basename, relative_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DROPPED = "\x00"  # stands for a character an id does not keep (never kept itself)
_DROPPED_RUN = re.compile(_DROPPED + "+")
# Letters and marks that show nothing (Unicode's Default_Ignorable_Code_Point, beside the
# format characters, category Cf, which are dropped anyway): Hangul fillers, variation
# selectors, the combining grapheme joiner, Mongolian and Khmer invisible signs.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


@lru_cache(maxsize=65536)
def safe_id(text: str) -> str:
    """An id usable in URLs and file names (stac-fastapi rejects `/`, `:` and others).

    ASCII letters, digits and `._-` are kept, and (in NFC) the letters and digits of any
    script with their combining marks, so `数据` and `café` stay what they are; every run
    of other characters (spaces, punctuation, control, bidi and invisible characters)
    becomes one `-`, and the id never starts or ends with `-` or `.`."""
    if text.isascii():  # the common case, as it always was
        cleaned = _UNSAFE.sub("-", text)
    else:
        kept: list[str] = []
        for char in unicodedata.normalize("NFC", text):
            kept.append(char if _kept(char, kept[-1] if kept else _DROPPED) else _DROPPED)
        cleaned = _DROPPED_RUN.sub("-", "".join(kept))
    cleaned = cleaned.strip("-.")
    if not cleaned:
        raise ValueError(f"cannot make an id from {text!r}")
    return cleaned


def _kept(char: str, previous: str) -> bool:
    if char.isascii():
        return not _UNSAFE.match(char)
    if char in _INVISIBLE:
        return False
    category = unicodedata.category(char)
    if category[0] in "LN":  # letters and digits (and other numerals) of every script
        return True
    # A combining mark only on a letter or digit: alone it would sit on a `/` or a `-`.
    return category[0] == "M" and (previous.isalnum() or unicodedata.category(previous)[0] == "M")


# Suffixes that name a store's format, not the dataset: dropped from ids.
STORE_SUFFIXES = (".zarr", ".json", ".parq", ".parquet")  # stores and kerchunk references


def strip_store_suffix(name: str) -> str:
    for suffix in STORE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Placement:
    collection_id: str
    item_id: str


def path_item_id(root: str, store_url: str) -> str:
    """An item id from the store's whole path below `root`."""
    parts = [p for p in relative_key(root, store_url).split("/") if p] or [basename(store_url)]
    parts[-1] = strip_store_suffix(parts[-1])
    return safe_id(".".join(parts))


def default_placement(root: str, store_url: str) -> Placement:
    parts = [p for p in relative_key(root, store_url).split("/") if p]
    if len(parts) >= 2:
        collection, rest = parts[0], parts[1:]
    else:
        collection = strip_store_suffix(basename(root)) or "zarr"
        rest = parts or [basename(store_url)]
    rest[-1] = strip_store_suffix(rest[-1])
    return Placement(collection_id=safe_id(collection), item_id=safe_id(".".join(rest)))
