"""Codecs a store needs, and stand-ins for those not installed here.

zarr instantiates every array's codecs when it parses metadata, so one data variable
compressed with a plugin this machine lacks (e.g. `blosc2`) would hide the whole store;
its chunks are never read here, its metadata is enough. A stand-in is registered in
numcodecs' and zarr's registries (zarr keeps its own in a private attribute: the one
place that touches it) only while a store is opened, and fails if a chunk is decoded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MAX_STAND_INS = 8  # distinct unknown codecs tolerated in one store


class CodecUnavailable(RuntimeError):
    """A chunk needed a codec that is not installed (raised by a stand-in's decode)."""


class _StandIn:
    """Marks a codec that is not installed: metadata parses, decoding fails."""

    codec_id = "?"

    def __init__(self, **configuration):
        self.configuration = configuration

    def decode(self, *args, **kwargs):
        raise CodecUnavailable(f"codec not available: {self.codec_id!r}")

    encode = decode


_stand_in_lock = threading.Lock()


def missing_codec(exc: BaseException | None) -> str | None:
    """The id of the uninstalled codec an open failed on, looking through chained causes."""
    from numcodecs.errors import UnknownCodecError as NumcodecsUnknown
    from zarr.errors import UnknownCodecError as ZarrUnknown

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NumcodecsUnknown):
            return str(exc.codec_id).strip("'\"")  # numcodecs passes it quoted
        if isinstance(exc, ZarrUnknown):
            found = re.search(r"Unknown codec: '([^']+)'", str(exc))
            return found.group(1) if found else None
        exc = exc.__cause__ or exc.__context__
    return None


def serializer_missing(exc: BaseException | None) -> bool:
    """Whether a Zarr v3 open failed for want of an array-to-bytes codec: a stand-in registered
    as bytes-to-bytes took the place of a serializer (`gribberish`, which decodes GRIB
    messages of a virtual store into arrays)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "At least one ArrayBytesCodec is required" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def standing_in(codec_ids: list[str], serializers: frozenset[str] = frozenset()) -> Iterator[None]:
    """Register stand-ins for `codec_ids` (numcodecs for v2, zarr for v3) while a store is opened.

    zarr instantiates every array's codecs when it parses metadata, so one data
    variable compressed with a plugin this machine lacks (e.g. `blosc2`) would
    hide the whole store; its chunks are never read here, its metadata is enough.
    A v3 codec is bytes-to-bytes (a compressor) unless it is in `serializers`: zarr needs
    each array's one array-to-bytes codec to be one, and its name does not say which it is.
    """
    if not codec_ids:
        yield
        return
    import numcodecs.abc
    import numcodecs.registry
    import zarr.registry
    from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec

    registries = getattr(zarr.registry, "__codec_registries")
    with _stand_in_lock:
        added_v2, added_v3 = [], []
        for codec_id in codec_ids:
            if codec_id not in numcodecs.registry.codec_registry:
                v2 = type(f"StandIn_{codec_id}", (_StandIn, numcodecs.abc.Codec), {"codec_id": codec_id})
                numcodecs.registry.codec_registry[codec_id] = v2
                added_v2.append(codec_id)
            if not registries.get(codec_id):
                attributes = {"codec_id": codec_id, "is_fixed_size": False}
                role = ArrayBytesCodec if codec_id in serializers else BytesBytesCodec
                v3 = type(f"StandInV3_{codec_id}", (_StandIn, role), attributes)
                v3.to_dict = lambda self: {"name": self.codec_id, "configuration": self.configuration}
                v3._decode_single = v3.decode
                zarr.registry.register_codec(codec_id, v3)
                added_v3.append(codec_id)
        try:
            yield
        finally:
            for codec_id in added_v2:
                numcodecs.registry.codec_registry.pop(codec_id, None)
            for codec_id in added_v3:
                registries.pop(codec_id, None)


def codec_names(codecs) -> list[str]:
    """The ids (v2) or names (v3) of codec objects, looking inside sharding."""
    names = []
    for codec in codecs or ():
        if codec is None:
            continue
        inner = getattr(codec, "codecs", None)  # sharding: the codecs inside the shards
        if inner:
            names += codec_names(inner)
        elif isinstance(codec, _StandIn):
            names.append(codec.codec_id)
        elif getattr(codec, "codec_id", None):
            names.append(str(codec.codec_id))
        else:
            names.append(str(codec.to_dict().get("name")))
    return names


def array_codecs(array) -> list[str]:
    """Codec ids a zarr array's chunks need (filters, serializer, compressors)."""
    meta = array.metadata
    if meta.zarr_format == 2:
        return codec_names([*(meta.filters or ()), meta.compressor])
    return codec_names(meta.codecs)
