"""The ``interactions`` dataset: a log (plus optional item metadata) → sequences and ranking targets."""
from __future__ import annotations

import logging
from typing import Literal

from fmkit.components import Params

from . import readers, splits

log = logging.getLogger("fmkit.recsys")


class InteractionsParams(Params):
    #: the interaction log: CSV, TSV, Parquet, or MovieLens' u.data
    path: str
    #: auto: by file name and suffix (u.data is movielens; .parquet, .tsv, else CSV)
    format: Literal["auto", "movielens", "csv", "tsv", "parquet"] = "auto"
    #: column separator of CSV/TSV files (default: ',' for CSV, tab for TSV)
    sep: str | None = None
    #: whether CSV/TSV files have a header row (u.data has none)
    header: bool = True
    #: text encoding of CSV/TSV files
    encoding: str = "utf-8"
    #: the column naming the user of each interaction
    user_column: str = "user"
    #: the column naming the item of each interaction
    item_column: str = "item"
    #: numbers or dates; null keeps the file's row order
    time_column: str | None = "timestamp"
    #: optional explicit ratings (needed by min_rating)
    rating_column: str | None = "rating"
    #: implicit feedback: keep only interactions rated at least this
    min_rating: float | None = None
    #: k-core filtering, repeated until both hold
    min_user_interactions: int = 0
    #: drop items with fewer interactions than this (repeated with min_user_interactions until both hold)
    min_item_interactions: int = 0
    #: leave-one-out: each user's last item is the test target, the one before it the validation target;
    #: temporal: cut by time stamps (temporal_ratios), so no training interaction comes after a test one
    split: Literal["leave-one-out", "temporal"] = "leave-one-out"
    #: temporal split: train share and train+validation share of all time stamps
    temporal_ratios: tuple[float, float] = (0.8, 0.9)
    #: temporal split: the first interaction of each user after a cut, or every one
    temporal_targets: Literal["first", "all"] = "first"
    #: cut long training sequences into windows of this many items (task.max_length + 1 uses every
    #: transition of long histories; default: one sequence per user, of which the task keeps the end)
    train_window: int | None = None
    #: item metadata (titles, text): CSV/TSV/Parquet, or MovieLens' u.item
    items: str | None = None
    #: how the item file is read; auto: u.item is MovieLens, else by suffix (.parquet; .tsv, .data, .tab: TSV; else CSV)
    items_format: Literal["auto", "movielens", "csv", "tsv", "parquet"] = "auto"
    #: the item file's column of item ids (the ids of the interaction log)
    item_id_column: str = "item"
    #: the item file's column of titles, shown in answers and the start of each item's text (null: none)
    item_title_column: str | None = "title"
    #: further item-file columns added to each item's text ("column: value"), which text-aware models read
    item_text_columns: list[str] = []


class Interactions:
    """Loads the log, filters it, splits it by time and hands the item catalogue to the task.

    The catalogue (every item the metadata lists, interacted with or not) is given to the
    ``sequential-recommendation`` task through ``task.attach_catalogue`` so new items can be ranked
    and answers carry titles.
    """

    def __init__(self, params: InteractionsParams, context: dict | None = None):
        self.p = params
        self.task = (context or {}).get("task")
        self.dropped: dict[str, int] = {}
        self.catalogue: dict[str, dict] | None = None

    def read(self):
        p = self.p
        df = readers.read_interactions(p.path, p.format, p.sep, p.header, p.user_column, p.item_column, p.time_column,
                                       p.rating_column, p.encoding)
        return splits.apply_filters(df, p.min_rating, p.min_user_interactions, p.min_item_interactions, self.dropped)

    def load(self) -> dict[str, list[dict]]:
        p = self.p
        self.dropped = {}
        seqs = splits.sequences(self.read())
        if p.split == "leave-one-out":
            out = splits.leave_one_out(seqs, self.dropped)
        else:
            out = splits.temporal(seqs, p.temporal_ratios, p.temporal_targets, self.dropped)
        out["train"] = splits.windows(out.get("train", []), p.train_window)
        if not out.get("train"):
            from fmkit.errors import DataError

            raise DataError(f"{p.path}: no user has the 3 interactions leave-one-out needs")
        if p.items:
            self.catalogue = readers.read_items(p.items, p.items_format, None, p.item_id_column, p.item_title_column,
                                                p.item_text_columns)
            if self.task is not None and hasattr(self.task, "attach_catalogue"):
                self.task.attach_catalogue(self.catalogue)
        log.info("interactions: %s", {k: len(v) for k, v in out.items()})
        return out
