"""Filters and splits of an interaction log into training sequences and evaluation targets.

Raw examples:
    training: ``{"user", "items": [item ids in time order]}`` (every next item is a target)
    evaluation: ``{"user", "history": [item ids], "target": item id}``

Leave-one-out by time (the standard protocol): per user, the last interaction is the test target
(history: everything before it), the second last the validation target (history: everything
before that), the rest is training. The global temporal split cuts every user's timeline at the
same two moments (quantiles of all time stamps): training sees only what happened before the first
cut, and a validation or test target is predicted from everything its user did before it.
"""
from __future__ import annotations

from typing import Literal

from fmkit.errors import DataError


def count(dropped: dict[str, int], reason: str, n: int) -> None:
    if n:
        dropped[f"all/{reason}"] = dropped.get(f"all/{reason}", 0) + int(n)


def apply_filters(df, min_rating: float | None, min_user: int, min_item: int, dropped: dict[str, int]):
    """Rating threshold (implicit feedback), then users and items with too few interactions,
    repeated until both hold (a k-core); every removed row is counted by reason."""
    if min_rating is not None:
        if df["rating"].isna().all():
            raise DataError("data.min_rating is set but the log has no ratings (set data.rating_column)")
        keep = df["rating"] >= min_rating
        count(dropped, f"interactions-rated-below-{min_rating:g}", (~keep).sum())
        df = df[keep]
    while min_user > 1 or min_item > 1:
        users = df.groupby("user")["item"].transform("size")
        items = df.groupby("item")["user"].transform("size")
        bad_u, bad_i = users < min_user, items < min_item
        if not (bad_u | bad_i).any():
            break
        count(dropped, f"interactions-of-users-with-fewer-than-{min_user}", bad_u.sum())
        count(dropped, f"interactions-of-items-with-fewer-than-{min_item}", (bad_i & ~bad_u).sum())
        df = df[~(bad_u | bad_i)]
    if df.empty:
        raise DataError("no interactions are left after data.min_rating / min_user_interactions / "
                        "min_item_interactions; relax them")
    return df


def sequences(df) -> dict[str, list[tuple[int, str]]]:
    """Each user's ``(time, item)`` pairs in time order (ties keep file order)."""
    df = df.reset_index(drop=True)
    df = df.assign(_row=range(len(df))).sort_values(["user", "time", "_row"], kind="stable")
    out: dict[str, list[tuple[int, str]]] = {}
    for user, t, item in zip(df["user"], df["time"], df["item"]):
        out.setdefault(user, []).append((int(t), item))
    return out


def windows(train: list[dict], size: int | None) -> list[dict]:
    """Cut training sequences longer than ``size`` items into windows of ``size`` that overlap by one
    item, from the end backwards, so every next-item transition is trained on exactly once."""
    if not size:
        return train
    if size < 2:
        raise DataError(f"data.train_window must be at least 2 items; got {size}")
    out = []
    for ex in train:
        items, end = ex["items"], len(ex["items"])
        while True:
            start = max(0, end - size)
            out.append({**ex, "items": items[start:end]})
            if start == 0:
                break
            end = start + 1
    return out


def leave_one_out(seqs: dict[str, list[tuple[int, str]]], dropped: dict[str, int]) -> dict[str, list[dict]]:
    """Last item test, second last validation, the rest training (users with < 3 interactions dropped)."""
    train, val, test = [], [], []
    short = 0
    for user in sorted(seqs):
        items = [i for _, i in seqs[user]]
        if len(items) < 3:
            short += 1
            continue
        train.append({"user": user, "items": items[:-2]})
        val.append({"user": user, "history": items[:-2], "target": items[-2]})
        test.append({"user": user, "history": items[:-1], "target": items[-1]})
    count(dropped, "users-with-fewer-than-3-interactions", short)
    return {"train": train, "validation": val, "test": test}


def temporal(seqs: dict[str, list[tuple[int, str]]], ratios: tuple[float, float], targets: Literal["first", "all"],
             dropped: dict[str, int]) -> dict[str, list[dict]]:
    """Cut all timelines at the ``ratios`` quantiles of the time stamps (train share, train+validation share)."""
    import numpy as np

    times = np.array([t for s in seqs.values() for t, _ in s])
    if not 0 < ratios[0] < ratios[1] <= 1:
        raise DataError(f"data.temporal_ratios must be two increasing shares in (0, 1]; got {list(ratios)}")
    t1, t2 = np.quantile(times, ratios[0]), np.quantile(times, ratios[1])
    train, val, test = [], [], []
    for user in sorted(seqs):
        s = seqs[user]
        before = [i for t, i in s if t < t1]
        if len(before) >= 2:
            train.append({"user": user, "items": before})
        for part, lo, hi in ((val, t1, t2), (test, t2, np.inf)):
            for k, (t, item) in enumerate(s):
                if lo <= t < hi and k > 0:
                    part.append({"user": user, "history": [i for _, i in s[:k]], "target": item})
                    if targets == "first":
                        break
    if not train:
        raise DataError(f"the temporal split leaves no user with 2 interactions before the first cut "
                        f"(data.temporal_ratios {list(ratios)}); give training a larger share")
    out = {"train": train, "validation": val, "test": test}
    return {k: v for k, v in out.items() if v}
