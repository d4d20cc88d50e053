"""Forecast archives: a reference (initialisation) time, lead times, and the valid times.

NWP stores (cfgrib's layout, dynamical.org's archives, OCF's NWP zarrs) recognised by
CF standard names, whatever the variables are called:

- `forecast_reference_time`: the runs (`init_time`, cfgrib's `time`), a dimension or a scalar;
- `forecast_period`: the lead times (`lead_time`, `step`), timedeltas or numbers with
  time units (seconds, minutes, hours, days);
- `time`: the valid times, often 2-D over (reference, lead) (`valid_time`), or a time
  dimension of their own beside a reference-time dimension (NWM's `time` and
  `reference_time`); when absent they are reference + lead.

The Item's temporal extent is that of the valid times. cube:dimensions gets the
reference time (temporal, with its ISO 8601 step when regular) and the lead time
(its extent and step in hours, and its values as ISO 8601 durations). A store holding a
single run gets the forecast extension v0.2.0: `forecast:reference_datetime` (the run)
and `forecast:horizon` (its longest lead time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from . import temporal

FORECAST_SCHEMA = "https://stac-extensions.github.io/forecast/v0.2.0/schema.json"
SECONDS_PER_UNIT = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
MAX_LISTED_LEADS = 100


@dataclass(frozen=True)
class Forecast:
    reference: str  # the forecast_reference_time coordinate
    lead: str | None  # the forecast_period coordinate
    valid: str | None  # the valid-time coordinate (standard_name time), any shape

    @property
    def dimensions(self) -> set[str]:
        return {name for name in (self.reference, self.lead) if name}


def _with_standard_name(ds: xr.Dataset, standard_name: str) -> list[str]:
    return sorted(str(n) for n, v in ds.variables.items() if v.attrs.get("standard_name") == standard_name)


def find_forecast(ds: xr.Dataset) -> Forecast | None:
    """The forecast layout of `ds`, or None when it has no forecast_reference_time."""
    references = _with_standard_name(ds, "forecast_reference_time")
    if not references:
        return None
    reference = next((n for n in references if n in ds.dims), references[0])
    periods = _with_standard_name(ds, "forecast_period")
    lead = next((n for n in periods if n in ds.dims), periods[0] if periods else None)
    forecast_dims = {d for d in (reference, lead) if d in ds.dims}
    if reference not in ds.dims and (lead is None or lead not in ds.dims):
        # A lone scalar reference time (an analysis that names its run) is no forecast layout.
        return None
    valid_times = [n for n in _with_standard_name(ds, "time") if n not in (reference, lead)]
    valid = next((n for n in valid_times if set(ds[n].dims) <= forecast_dims), None)
    if valid is None:
        # A time axis of its own beside the reference time (NWM, WRF-Hydro: `time` and
        # `reference_time`, each a dimension): the valid times.
        valid = next((n for n in valid_times if list(ds[n].dims) == [n]), None)
    return Forecast(reference=reference, lead=lead, valid=valid)


def lead_seconds(ds: xr.Dataset, name: str) -> np.ndarray:
    """Lead times in seconds (float; NaN where missing)."""
    var = ds[name]
    values = np.asarray(var.values)
    if values.dtype.kind == "m":
        seconds = values.astype("timedelta64[ns]").astype("int64").astype("f8") / 1e9
        return np.where(np.isnat(values), np.nan, seconds)
    units = str(var.attrs.get("units") or var.encoding.get("units") or "").strip().lower()
    if units not in SECONDS_PER_UNIT:
        raise ValueError(f"lead time {name!r} has units {units!r}, not a duration")
    return values.astype("f8") * SECONDS_PER_UNIT[units]


def _valid_values(ds: xr.Dataset, forecast: Forecast) -> np.ndarray:
    if forecast.valid is not None:
        return np.asarray(ds[forecast.valid].values).ravel()
    references = np.asarray(ds[forecast.reference].values).ravel()
    if forecast.lead is None:
        return references
    leads = lead_seconds(ds, forecast.lead)
    leads = leads[np.isfinite(leads)]
    if references.dtype.kind != "M" or leads.size == 0:
        return references
    offsets = (leads * 1e9).astype("int64").astype("timedelta64[ns]")
    return (references.astype("datetime64[ns]")[:, None] + offsets[None, :]).ravel()


def valid_extent(ds: xr.Dataset, forecast: Forecast) -> tuple[dt.datetime, dt.datetime]:
    """First and last valid time; ValueError when none decodes."""
    if forecast.valid is not None and list(ds[forecast.valid].dims) == [forecast.valid]:
        return temporal.time_extent(ds, forecast.valid)  # a time axis of its own: with its CF bounds, as any
    values = _valid_values(ds, forecast)
    if values.dtype.kind == "M":
        values = values[~np.isnat(values)]
    else:
        values = np.array([v for v in values if hasattr(v, "calendar") or isinstance(v, dt.datetime)])
    if values.size == 0:
        name = forecast.valid or forecast.reference
        raise ValueError(f"forecast times {name!r} could not be decoded (units: {ds[name].attrs.get('units')!r})")
    return temporal.to_datetime(values.min()), temporal.to_datetime(values.max())


def _hours(seconds: float) -> float | int:
    hours = seconds / 3600
    return int(hours) if float(hours).is_integer() else hours


def dimensions(ds: xr.Dataset, forecast: Forecast) -> dict[str, dict[str, Any]]:
    """cube:dimensions entries for the reference time and the lead time."""
    entries: dict[str, dict[str, Any]] = {}
    if forecast.reference in ds.dims:
        start, end = temporal.time_extent(ds, forecast.reference)
        entry: dict[str, Any] = {"type": "temporal", "extent": [temporal.isoformat(start), temporal.isoformat(end)]}
        entry["description"] = str(ds[forecast.reference].attrs.get("long_name") or "forecast reference time")
        if step := temporal.time_step(ds, forecast.reference):
            entry["step"] = step
        entries[forecast.reference] = entry
    if forecast.lead and forecast.lead in ds.dims:
        seconds = lead_seconds(ds, forecast.lead)
        finite = seconds[np.isfinite(seconds)]
        description = str(ds[forecast.lead].attrs.get("long_name") or "lead time")
        entry = {"type": "forecast_period", "unit": "h", "description": description}
        if finite.size:
            entry["extent"] = [_hours(finite.min()), _hours(finite.max())]
            deltas = np.diff(finite)
            if deltas.size and np.all(deltas == deltas[0]) and deltas[0] > 0:
                entry["step"] = _hours(deltas[0])
            if finite.size <= MAX_LISTED_LEADS:
                entry["values"] = [temporal.duration(int(s)) for s in finite]
        else:
            entry["extent"] = [0, int(ds.sizes[forecast.lead]) - 1]
        entries[forecast.lead] = entry
    if forecast.valid in ds.dims and forecast.valid not in entries:
        start, end = temporal.time_extent(ds, forecast.valid)
        entry = {"type": "temporal", "extent": [temporal.isoformat(start), temporal.isoformat(end)]}
        entry["description"] = str(ds[forecast.valid].attrs.get("long_name") or "valid time")
        if step := temporal.time_step(ds, forecast.valid):
            entry["step"] = step
        entries[forecast.valid] = entry
    return entries


def properties(ds: xr.Dataset, forecast: Forecast) -> dict[str, Any]:
    """Forecast extension fields; only for a store holding a single run (the extension
    requires `forecast:reference_datetime`, which a multi-run archive does not have)."""
    references = np.asarray(ds[forecast.reference].values).ravel()
    if references.dtype.kind == "M":
        references = references[~np.isnat(references)]
    if references.size != 1:
        return {}
    fields: dict[str, Any] = {"forecast:reference_datetime": temporal.isoformat(temporal.to_datetime(references[0]))}
    if forecast.lead:
        leads = lead_seconds(ds, forecast.lead)
        leads = leads[np.isfinite(leads)]
        if leads.size:
            fields["forecast:horizon"] = temporal.duration(int(leads.max()))
    return fields
