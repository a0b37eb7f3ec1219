"""Time-series data: a table with a time column, chronological splits and sliding windows.

The frequency is inferred and checked, gaps become rows and, like other missing values, are
filled or dropped as the recipe says (every change is counted in the run's data summary).
Splits are chronological (ratios, dates or row borders, such as ETT's 12/4/4 months); a
validation or test window may look back into the previous part for its context, but no training
window reaches into validation or test rows.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from fmkit.components import Params
from fmkit.errors import DataError

log = logging.getLogger("fmkit.timeseries")


class TableParams(Params):
    #: a CSV or Parquet file
    path: str
    #: the column holding each row's date and time
    time_column: str = "date"
    #: columns to forecast (default: every numeric column that is not a covariate)
    target_columns: list[str] | None = None
    #: past-only inputs that are not forecast
    covariate_columns: list[str] = []
    #: several series in one long table: the column naming the series
    series_column: str | None = None
    #: expected pandas frequency ("h", "D", "15min"); default: inferred, and gaps reported
    frequency: str | None = None
    #: what to do with missing values and gap rows
    missing: Literal["ffill", "interpolate", "drop", "error"] = "ffill"
    #: chronological split: ratios of rows, end dates of train and validation, or row borders
    split_ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    #: instead of split_ratios: up to three dates ("2017-06-26"): rows before the first are train, then
    #: validation up to the second, then test up to the third; a part whose date is left out runs to the end
    split_dates: list[str] | None = None
    #: instead of split_ratios and split_dates: three increasing row counts where train, validation and test end
    split_borders: list[int] | None = None


class TimeSeriesTable:
    """Loads the table and yields window examples ``{"window", "start", "series", "columns", "n_targets"}``."""

    def __init__(self, params: TableParams, context: dict | None = None):
        task = (context or {}).get("task")
        tp = getattr(task, "params", None)
        if tp is None or not hasattr(tp, "context_length"):
            raise DataError("timeseries-table needs the time-series-forecasting task (it reads context_length and horizon)")
        self.p, self.L, self.H = params, tp.context_length, tp.horizon
        self.stride, self.eval_stride = tp.stride, tp.eval_stride
        self.dropped: dict[str, int] = {}
        self.frequency: str | None = None

    # ---------------------------------------------------------------- reading
    def read(self):
        import pandas as pd

        path = Path(self.p.path)
        if not path.is_file():
            raise DataError(f"data.path: {path} does not exist")
        try:
            df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as e:
            raise DataError(f"{path}: cannot read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {e}") from None
        if self.p.time_column not in df.columns:
            raise DataError(f"{path}: no time column {self.p.time_column!r} (columns: {list(df.columns)}); "
                            "set data.time_column")
        try:
            df[self.p.time_column] = pd.to_datetime(df[self.p.time_column])
        except (ValueError, TypeError) as e:
            raise DataError(f"{path}: column {self.p.time_column!r} is not a date/time: {e}") from None
        skip = {self.p.time_column, self.p.series_column, *self.p.covariate_columns}
        targets = self.p.target_columns or [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
        missing = [c for c in [*targets, *self.p.covariate_columns] if c not in df.columns]
        if missing:
            raise DataError(f"{path}: columns {missing} are not in the file (columns: {list(df.columns)})")
        if not targets:
            raise DataError(f"{path}: no numeric target columns; set data.target_columns")
        self.columns = [*targets, *self.p.covariate_columns]
        self.n_targets = len(targets)
        return df

    def _regular(self, df, name: str):
        """Sorted, on a regular time grid (gaps inserted as missing rows), missing values handled."""
        import pandas as pd

        t = self.p.time_column
        df = df.sort_values(t).drop_duplicates(t, keep="last")
        diffs = df[t].diff().dropna()
        if diffs.empty:
            raise DataError(f"series {name!r} has fewer than two rows")
        step = diffs.mode().iloc[0]
        if self.p.frequency:
            want = pd.to_timedelta(pd.tseries.frequencies.to_offset(self.p.frequency))
            if want != step:
                raise DataError(f"series {name!r}: data.frequency is {self.p.frequency!r} ({want}) but the rows are "
                                f"mostly {step} apart; fix data.frequency or the time column")
        self.frequency = self.p.frequency or pd.tseries.frequencies.to_offset(step).freqstr
        if ((diffs % step) != pd.Timedelta(0)).any():
            bad = df[t].iloc[1:][(diffs % step) != pd.Timedelta(0)].iloc[0]
            raise DataError(f"series {name!r}: irregular time stamps (e.g. {bad}) do not fit the {step} grid")
        full = pd.date_range(df[t].iloc[0], df[t].iloc[-1], freq=step)
        gaps = len(full) - len(df)
        if gaps:
            log.warning("series %r: %d missing time stamps on the %s grid inserted as missing rows", name, gaps, step)
            self._count("gap-rows-inserted", gaps)
            df = df.set_index(t).reindex(full).rename_axis(t).reset_index()
        values = df[self.columns]
        n_missing = int(values.isna().any(axis=1).sum())
        if n_missing:
            policy = self.p.missing
            if policy == "error":
                first = df[t][values.isna().any(axis=1)].iloc[0]
                raise DataError(f"series {name!r}: {n_missing} rows with missing values (first at {first}); "
                                "set data.missing to ffill, interpolate or drop")
            if policy == "drop":
                df = df[~values.isna().any(axis=1)]
                self._count("rows-with-missing-values-dropped", n_missing)
            else:
                filled = values.interpolate(limit_direction="both") if policy == "interpolate" else values.ffill().bfill()
                df = df.assign(**{c: filled[c] for c in self.columns})
                self._count(f"rows-with-missing-values-{'interpolated' if policy == 'interpolate' else 'forward-filled'}",
                            n_missing)
        return df.reset_index(drop=True)

    def _count(self, reason: str, n: int) -> None:
        self.dropped[f"all/{reason}"] = self.dropped.get(f"all/{reason}", 0) + n

    # ---------------------------------------------------------------- splitting
    def _borders(self, df) -> tuple[int, int, int]:
        import pandas as pd

        n, p = len(df), self.p
        if p.split_borders:
            if len(p.split_borders) != 3 or not (0 < p.split_borders[0] < p.split_borders[1] < p.split_borders[2] <= n):
                raise DataError(f"data.split_borders must be three increasing row counts <= {n} rows; "
                                f"got {p.split_borders}")
            return tuple(p.split_borders)  # type: ignore[return-value]
        if p.split_dates:
            times = df[p.time_column]
            ends = [int((times < pd.Timestamp(d)).sum()) for d in p.split_dates[:3]]
            ends += [n] * (3 - len(ends))
            return ends[0], ends[1], ends[2]
        r = p.split_ratios
        if abs(sum(r) - 1) > 1e-6 and sum(r) > 1:
            raise DataError(f"data.split_ratios {list(r)} add up to more than 1")
        a, b = int(n * r[0]), int(n * (r[0] + r[1]))
        return a, b, min(n, int(n * (r[0] + r[1] + r[2])) if sum(r) < 1 else n)

    def _windows(self, values: np.ndarray, lo: int, hi: int, stride: int, series) -> list[dict]:
        """Windows whose forecast part lies in rows [lo, hi); the context may start before lo."""
        span = self.L + self.H
        first = max(0, lo - self.L)
        cols = tuple(self.columns)
        return [{"window": values[s:s + span], "start": s, "series": series, "columns": cols,
                 "n_targets": self.n_targets, "frequency": self.frequency} for s in range(first, hi - span + 1, stride)]

    def load(self) -> dict[str, list[dict]]:
        df = self.read()
        groups = [(None, df)] if not self.p.series_column else list(df.groupby(self.p.series_column, sort=True))
        splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
        for name, part in groups:
            part = self._regular(part, "series" if name is None else str(name))
            values = part[self.columns].to_numpy(np.float32)
            a, b, c = self._borders(part)
            if a < self.L + self.H:
                raise DataError(f"the training part has {a} rows, fewer than context_length + horizon = "
                                f"{self.L + self.H}; use more data or shorter windows")
            splits["train"] += self._windows(values, 0, a, self.stride, name)
            splits["validation"] += self._windows(values, a, b, self.eval_stride, name)
            splits["test"] += self._windows(values, b, c, self.eval_stride, name)
        if not splits["validation"]:
            raise DataError("the chronological validation part has no complete window (context_length + horizon "
                            "rows); fmkit never splits time series at random. Give validation more rows")
        return {k: v for k, v in splits.items() if v}


class SeriesClassificationParams(Params):
    #: wide CSV/TSV/Parquet (one series per row: a label column and value columns) or .npz (x: N x T [x C], y: N)
    train: str
    #: the same for the validation split (null: data.validation_split of train is held out)
    validation: str | None = None
    #: the same for the test split (null: no test split)
    test: str | None = None
    #: the column holding each series' label (wide tables)
    label_column: str = "label"
    #: value columns of a wide table (default: every numeric column but the label)
    value_columns: list[str] | None = None


class SeriesClassificationFiles:
    """Fixed-length series with a label: wide tables (UCR-style) or numpy archives."""

    def __init__(self, params: SeriesClassificationParams, context: dict | None = None):
        self.p = params

    def load_file(self, path_str: str) -> list[dict]:
        import pandas as pd

        path = Path(path_str)
        if not path.is_file():
            raise DataError(f"{path} does not exist")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                x, y = z["x"], z["y"]
            x = x[..., None] if x.ndim == 2 else x
            return [{"series": x[i].astype(np.float32), "label": str(y[i])} for i in range(len(x))]
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        if self.p.label_column not in df.columns:
            raise DataError(f"{path}: no label column {self.p.label_column!r} (columns: {list(df.columns)[:10]}...)")
        cols = self.p.value_columns or [c for c in df.columns if c != self.p.label_column
                                        and pd.api.types.is_numeric_dtype(df[c])]
        x = df[cols].to_numpy(np.float32)[..., None]
        return [{"series": x[i], "label": str(v)} for i, v in enumerate(df[self.p.label_column])]

    def load(self) -> dict[str, list[dict]]:
        return {n: self.load_file(getattr(self.p, n)) for n in ("train", "validation", "test") if getattr(self.p, n)}
