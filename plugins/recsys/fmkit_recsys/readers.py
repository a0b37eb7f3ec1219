"""Reading interaction logs and item metadata: CSV, TSV, Parquet and MovieLens' own files.

An interaction log has a user, an item and (optionally) a time stamp and a rating per row.
MovieLens' ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``, no header) is read directly
with ``format: movielens`` (or ``auto`` when the file is called ``u.data``). Item metadata gives
each item a title and a text (title plus any text columns; MovieLens' ``u.item`` genres), which
serving answers show and the text-aware model encodes.
"""
from __future__ import annotations

from pathlib import Path

from fmkit.errors import DataError

#: MovieLens-100k's 19 genre flags in ``u.item``, in file order (``u.genre`` names them the same)
ML_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _kind(path: Path, fmt: str, movielens_name: str) -> str:
    if fmt != "auto":
        return fmt
    if path.name == movielens_name:
        return "movielens"
    return {".parquet": "parquet", ".tsv": "tsv", ".data": "tsv", ".tab": "tsv"}.get(path.suffix.lower(), "csv")


def _read_table(path: Path, kind: str, sep: str | None, encoding: str, header: bool):
    import pandas as pd

    if kind == "parquet":
        try:
            return pd.read_parquet(path)
        except ImportError as e:
            raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'fmkit-recsys[parquet]'): {e}") from None
    try:
        return pd.read_csv(path, sep=sep or ("\t" if kind == "tsv" else ","), header=0 if header else None,
                           encoding=encoding, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {encoding} text ({e}); set data.encoding (MovieLens' u.item is latin-1)") from None
    except Exception as e:  # pandas' parser errors name the line
        raise DataError(f"{path}: cannot read as {kind.upper()}: {e}") from None


def read_interactions(path_str: str, fmt: str = "auto", sep: str | None = None, header: bool = True,
                      user_column: str = "user", item_column: str = "item", time_column: str | None = "timestamp",
                      rating_column: str | None = "rating", encoding: str = "utf-8"):
    """A DataFrame with columns ``user``, ``item`` (strings), ``time`` (int64 or row order) and
    ``rating`` (float or NaN), in file order."""
    import numpy as np
    import pandas as pd

    path = Path(path_str)
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist")
    kind = _kind(path, fmt, "u.data")
    if kind == "movielens":
        df = _read_table(path, "tsv", sep or "\t", encoding, header=False)
        if df.shape[1] != 4:
            raise DataError(f"{path}: MovieLens u.data has 4 tab-separated columns (user, item, rating, timestamp); "
                            f"found {df.shape[1]}. Set data.format: csv (or tsv) and the column names for other files")
        df.columns = ["user", "item", "rating", "timestamp"]
        user_column, item_column, time_column, rating_column = "user", "item", "timestamp", "rating"
    else:
        df = _read_table(path, kind, sep, encoding, header)
        df.columns = [str(c) for c in df.columns]
    for field, col in (("user_column", user_column), ("item_column", item_column)):
        if col not in df.columns:
            raise DataError(f"{path}: no {field.split('_')[0]} column {col!r} (columns: {list(df.columns)}); "
                            f"set data.{field}, or data.format: movielens for a u.data file")
    out = pd.DataFrame({"user": df[user_column].astype(str).str.strip(), "item": df[item_column].astype(str).str.strip()})
    empty = (out["user"] == "") | (out["item"] == "")
    if empty.any():
        line = int(np.flatnonzero(empty.to_numpy())[0]) + (2 if header and kind != "movielens" else 1)
        raise DataError(f"{path}:{line}: empty user or item id")
    if time_column and time_column in df.columns:
        out["time"] = _times(df[time_column], path, time_column, header and kind != "movielens")
    elif time_column:
        raise DataError(f"{path}: no time column {time_column!r} (columns: {list(df.columns)}); "
                        "set data.time_column, or null to keep file order")
    else:
        out["time"] = np.arange(len(out), dtype=np.int64)  # no time stamps: file order is the order
    if rating_column and rating_column in df.columns:
        r = pd.to_numeric(df[rating_column].replace("", np.nan), errors="coerce")
        bad = r.isna() & (df[rating_column].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}:{i + (2 if header and kind != 'movielens' else 1)}: rating "
                            f"{df[rating_column].iloc[i]!r} in column {rating_column!r} is not a number")
        out["rating"] = r.astype(float)
    else:
        out["rating"] = np.nan
    return out


def _times(col, path: Path, name: str, header: bool):
    import numpy as np
    import pandas as pd

    num = pd.to_numeric(col, errors="coerce")
    if not num.isna().any():
        return num.astype("int64")
    try:
        t = pd.to_datetime(col, errors="raise")
    except (ValueError, TypeError):
        i = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise DataError(f"{path}:{i + (2 if header else 1)}: time {col.iloc[i]!r} in column {name!r} is neither a "
                        "number nor a date") from None
    return t.astype("int64")


def read_items(path_str: str, fmt: str = "auto", sep: str | None = None, id_column: str = "item",
               title_column: str | None = "title", text_columns: list[str] | None = None,
               encoding: str | None = None) -> dict[str, dict]:
    """Item metadata: ``{item id: {"title": str | None, "text": str}}``.

    ``format: movielens`` (or a file called ``u.item``) reads MovieLens' ``|``-separated Latin-1
    file: title and the genre flags (named from ``u.genre`` next to it when present) become the text.
    """
    path = Path(path_str)
    if not path.is_file():
        raise DataError(f"data.items: {path} does not exist")
    kind = _kind(path, fmt, "u.item")
    if kind == "movielens":
        df = _read_table(path, "csv", "|", encoding or "latin-1", header=False)
        if df.shape[1] < 5:
            raise DataError(f"{path}: MovieLens u.item has |-separated columns id|title|release|video|url|genres...; "
                            f"found {df.shape[1]} columns")
        genres = _genre_names(path, df.shape[1] - 5)
        out = {}
        for row in df.itertuples(index=False):
            flags = [g for g, f in zip(genres, row[5:]) if str(f).strip() == "1"]
            title = str(row[1]).strip()
            out[str(row[0]).strip()] = {"title": title, "text": f"{title}. Genres: {', '.join(flags) or 'unknown'}"}
        return out
    df = _read_table(path, kind, sep, encoding or "utf-8", header=True)
    df.columns = [str(c) for c in df.columns]
    cols = [id_column, *([title_column] if title_column else []), *(text_columns or [])]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: item metadata lacks columns {missing} (columns: {list(df.columns)}); set "
                        "data.item_id_column / item_title_column / item_text_columns")
    out = {}
    for rec in df[cols].astype(str).to_dict("records"):
        title = rec[title_column].strip() if title_column else None
        parts = [title] if title else []
        parts += [f"{c}: {rec[c].strip()}" for c in (text_columns or []) if rec[c].strip()]
        out[rec[id_column].strip()] = {"title": title, "text": ". ".join(parts) or rec[id_column].strip()}
    return out


def _genre_names(path: Path, n: int) -> list[str]:
    g = path.with_name("u.genre")
    if g.is_file():
        names = [ln.split("|")[0] for ln in g.read_text(encoding="latin-1").splitlines() if "|" in ln]
        if len(names) == n:
            return names
    return ML_GENRES[:n] if n <= len(ML_GENRES) else ML_GENRES + [f"genre{i}" for i in range(len(ML_GENRES), n)]
