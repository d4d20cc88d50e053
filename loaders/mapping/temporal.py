"""Temporal extents and steps from a time coordinate, in any CF calendar.

Rules:

- values decode to numpy datetimes (standard/gregorian/proleptic_gregorian) or to
  cftime objects (noleap, 360_day, all_leap, julian, ...); both become UTC
  datetimes with the same calendar *labels* (year, month, day, time): a julian or
  360_day date is not shifted to the Gregorian day it falls on;
- a label that does not exist in the Gregorian calendar (30 February in a
  360_day calendar, 29 February of a non-leap year in all_leap/julian) becomes the
  last day of that month at the same time of day;
- CF time bounds (`bounds` attribute, e.g. `time_bnds`) widen the extent when present;
- a step is published as an ISO 8601 duration only when it is regular: equal
  spacing (`P1D`, `PT6H`), or the same position in consecutive months (`P1M`),
  years (`P1Y`) or multiples; monthly means stamped mid-month count as `P1M`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools

import numpy as np
import pandas as pd
import xarray as xr

UTC = dt.timezone.utc


def to_datetime(value) -> dt.datetime:
    """One decoded time value (numpy datetime64 or cftime) as an aware UTC datetime."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).to_pydatetime().replace(tzinfo=UTC)
    if isinstance(value, dt.datetime):  # cftime objects are not, but pandas' are
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if all(hasattr(value, f) for f in ("year", "month", "day")):  # cftime.datetime
        last_day = calendar.monthrange(value.year, value.month)[1]
        return dt.datetime(
            value.year,
            value.month,
            min(value.day, last_day),
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=UTC,
        )
    raise TypeError(f"not a decoded time value: {value!r}")


def isoformat(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """The decoded values of time coordinate `name`, and of its bounds if any."""
    values = np.asarray(ds[name].values).ravel()
    bounds = ds[name].attrs.get("bounds") or ds[name].encoding.get("bounds")
    if bounds and bounds in ds.variables:
        values = np.concatenate([values, np.asarray(ds[bounds].values).ravel()])
    return values


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, np.datetime64) and np.isnat(value))


def time_extent(ds: xr.Dataset, name: str) -> tuple[dt.datetime, dt.datetime]:
    raw = time_values(ds, name)
    if raw.dtype.kind == "M":  # numpy datetimes: vectorised
        valid = raw[~np.isnat(raw)]
        if valid.size == 0:
            raise ValueError(f"time coordinate {name!r} has no valid values")
        return to_datetime(valid.min()), to_datetime(valid.max())
    values = [v for v in raw if not _is_missing(v)]
    if not values:
        raise ValueError(f"time coordinate {name!r} has no valid values")
    if ds[name].dtype.kind == "O":
        if not all(hasattr(v, "calendar") or isinstance(v, dt.datetime) for v in values):
            raise ValueError(f"time coordinate {name!r} could not be decoded (units: {ds[name].attrs.get('units')!r})")
    elif ds[name].dtype.kind != "M":
        units = ds[name].attrs.get("units") or ds[name].encoding.get("units")
        raise ValueError(f"time coordinate {name!r} could not be decoded (units: {units!r})")
    return to_datetime(min(values)), to_datetime(max(values))


def _months(value) -> int:
    return value.year * 12 + value.month


# False: month steps of numpy datetimes from one pandas Timestamp per value (the reference).
FAST_STEP = True


def time_step(ds: xr.Dataset, name: str) -> str | None:
    """ISO 8601 duration of a regular time axis, or None."""
    raw = np.asarray(ds[name].values).ravel()
    if raw.size < 2:
        return None
    fast = FAST_STEP and raw.dtype.kind == "M" and np.datetime_data(raw.dtype)[0] in ("s", "ms", "us", "ns")
    if fast and not np.isnat(raw).any():
        # Months since 1970 (numpy floors to the month, before 1970 too): the same differences
        # as year * 12 + month of each value, without a Timestamp per value.
        month_steps = set(np.diff(raw.astype("datetime64[M]").astype("int64")).tolist())
        seconds = np.diff(raw.astype("datetime64[s]").astype("int64"))
    else:
        labels = [pd.Timestamp(v) for v in raw] if raw.dtype.kind == "M" else list(raw)
        if raw.dtype.kind == "M":
            seconds = np.diff(raw.astype("datetime64[s]").astype("int64"))
        else:
            seconds = np.array([(b - a).total_seconds() for a, b in itertools.pairwise(labels)])
        # Calendar steps first: consecutive months (or years) whatever their length,
        # which also covers the 30-day "months" of a 360_day calendar.
        month_steps = {_months(b) - _months(a) for a, b in itertools.pairwise(labels)}
    if len(month_steps) == 1 and (months := month_steps.pop()) > 0 and seconds.min() >= months * 27 * 86400:
        return f"P{months // 12}Y" if months % 12 == 0 else f"P{months}M"
    if np.all(seconds == seconds[0]) and seconds[0] > 0:
        return _seconds_to_duration(int(seconds[0]))
    return None


def _seconds_to_duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text + ("T" + clock if clock else "") if (days or clock) else "PT0S"


def duration(seconds: int) -> str:
    """`seconds` as an ISO 8601 duration (`PT6H`, `P1DT12H`, `PT0S`)."""
    return _seconds_to_duration(seconds)
