"""``csv-table``: CSV files whose column types are declared in the recipe or inferred from train."""

from typing import Literal

from fmkit import Dataset, DataError, Params
from fmkit.io import read_csv


class CsvTableParams(Params):
    #: the training table (CSV with a header row)
    train: str
    #: the validation table; null: carved out of train (data.validation_split)
    validation: str | None = None
    #: the test table; null: none, or carved out of train with test_fraction
    test: str | None = None
    #: the column to predict
    target: str = "target"
    #: column types; a column not listed is numeric when every value in train parses as a number
    columns: dict[str, Literal["numeric", "categorical"]] = {}
    #: columns to leave out (row ids...)
    ignore: list[str] = []
    #: carve a seeded test split out of train when there is none
    test_fraction: float = 0.0
    #: seed of that carving, so every run gets the same test rows
    seed: int = 0


def number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def infer_types(rows: list[dict], declared: dict[str, str]) -> dict[str, str]:
    """Each column's type: the declared one, else numeric when every non-empty value is a number."""
    return {c: declared.get(c) or ("numeric" if all(number(r[c]) is not None for r in rows if r[c] != "")
                                   else "categorical") for c in (rows[0] if rows else [])}


class CsvTable(Dataset):
    """Examples ``{"features": {column: text}, "target": text, "source": "file:line"}``; types: :meth:`metadata`."""

    types: dict[str, str] | None = None  # train's column types, used for every file read after it

    def metadata(self):
        return {"column_types": self.types or {}}  # fmkit gives it to the task before Task.setup

    def load_file(self, path):
        p, rows = self.params, read_csv(path)
        header = list(rows[0][1]) if rows else []
        for c in [p.target, *p.columns, *p.ignore]:
            if c not in header:
                raise DataError(f"{path}: no column {c!r} (data.target, data.columns, data.ignore); header: {header}")
        self.types = self.types or infer_types([r for _, r in rows], p.columns)
        keep = [c for c in self.types if c != p.target and c not in p.ignore]
        return [{"features": {c: row[c] for c in keep}, "target": row[p.target] or None, "source": f"{path}:{line}"}
                for line, row in rows]
