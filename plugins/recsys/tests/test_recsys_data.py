"""fmkit-recsys data: readers (CSV/TSV/Parquet, MovieLens layouts), filters and both splits."""
from __future__ import annotations

import importlib.util

import pytest
from fmkit.errors import DataError
from fmkit_recsys.datasets import Interactions, InteractionsParams


def _log(path, rows, header="user,item,rating,timestamp", sep=","):
    path.write_text((header + "\n" if header else "") + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


ROWS = [  # user, item, rating, timestamp (not in time order in the file)
    ("a", 1, 5, 30), ("a", 2, 3, 10), ("a", 3, 4, 20), ("a", 4, 5, 40),
    ("b", 2, 4, 15), ("b", 3, 1, 25), ("b", 5, 5, 35),
    ("c", 1, 5, 5), ("c", 9, 2, 6),
]


def _load(path, **kw):
    ds = Interactions(InteractionsParams(path=str(path), **kw))
    return ds, ds.load()


def test_leave_one_out_orders_by_time_and_holds_out_the_last_two(tmp_path):
    ds, s = _load(_log(tmp_path / "log.csv", ROWS))
    a_train, a_val, a_test = (next(e for e in s[k] if e["user"] == "a") for k in ("train", "validation", "test"))
    assert a_train == {"user": "a", "items": ["2", "3"]}
    assert a_val == {"user": "a", "history": ["2", "3"], "target": "1"}
    assert a_test == {"user": "a", "history": ["2", "3", "1"], "target": "4"}
    assert [e["user"] for e in s["test"]] == ["a", "b"]  # c has only 2 interactions
    assert ds.dropped == {"all/users-with-fewer-than-3-interactions": 1}


def test_movielens_udata_and_uitem_read_directly(tmp_path):
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in
                                             [(1, 10, 5, 3), (1, 11, 4, 1), (1, 12, 3, 2), (2, 10, 2, 9)]))
    (tmp_path / "u.item").write_bytes("10|Am\xe9lie (2001)|01-Jan-2001||http://x|0|0|0|0|0|1|0|0|1|0|0|0|0|0|1|0|0|0|0\n"
                                      "11|Heat (1995)|01-Jan-1995||http://x|0|1|0|0|0|0|1|0|0|0|0|0|0|0|0|0|1|0|0\n"
                                      .encode("latin-1"))
    ds, s = _load(tmp_path / "u.data", items=str(tmp_path / "u.item"))
    assert s["test"] == [{"user": "1", "history": ["11", "12"], "target": "10"}]
    assert ds.catalogue["10"]["title"] == "Amélie (2001)"
    assert ds.catalogue["10"]["text"] == "Amélie (2001). Genres: Comedy, Drama, Romance"
    assert "Action" in ds.catalogue["11"]["text"] and "Thriller" in ds.catalogue["11"]["text"]


def test_rating_threshold_and_k_core_filters_are_counted(tmp_path):
    _log(tmp_path / "log.tsv", ROWS, header="user\titem\trating\ttimestamp", sep="\t")
    ds, s = _load(tmp_path / "log.tsv", min_rating=4)
    assert ds.dropped["all/interactions-rated-below-4"] == 3
    assert s["test"] == [{"user": "a", "history": ["3", "1"], "target": "4"}]
    ds, s = _load(tmp_path / "log.tsv", min_item_interactions=2)  # items 4, 5 and 9 have one user each
    assert ds.dropped == {"all/interactions-of-items-with-fewer-than-2": 3, "all/users-with-fewer-than-3-interactions": 2}
    assert s["test"] == [{"user": "a", "history": ["2", "3"], "target": "1"}]
    with pytest.raises(DataError, match="no interactions are left"):  # the k-core repeats until nothing is left
        _load(tmp_path / "log.tsv", min_user_interactions=3, min_item_interactions=2)


def test_temporal_split_never_shows_later_interactions_to_training(tmp_path):
    ds, s = _load(_log(tmp_path / "log.csv", ROWS), split="temporal", temporal_ratios=(0.5, 0.75), temporal_targets="all")
    t1 = sorted(r[3] for r in ROWS)[4]  # the median time stamp
    item_time = {(u, str(i)): t for u, i, _, t in ROWS}
    for ex in s["train"]:
        assert all(item_time[(ex["user"], i)] < t1 for i in ex["items"])
    for ex in s["test"] + s.get("validation", []):
        t = item_time[(ex["user"], ex["target"])]
        assert t >= t1 and all(item_time[(ex["user"], i)] < t for i in ex["history"])


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        _load(tmp_path / "none.csv")
    with pytest.raises(DataError, match="no item column 'item'"):
        _load(_log(tmp_path / "x.csv", [("a", 1)], header="user,movie"), time_column=None)
    with pytest.raises(DataError, match=r"x2.csv:3: rating 'five'"):
        _load(_log(tmp_path / "x2.csv", [("a", 1, 4, 1), ("a", 2, "five", 2)]))
    with pytest.raises(DataError, match="no time column 'ts'"):
        _load(_log(tmp_path / "x3.csv", [("a", 1, 4, 1)]), time_column="ts")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")
def test_parquet(tmp_path):
    import pandas as pd

    pd.DataFrame(ROWS, columns=["user", "item", "rating", "timestamp"]).to_parquet(tmp_path / "log.parquet")
    _, s = _load(tmp_path / "log.parquet")
    assert s["test"][0] == {"user": "a", "history": ["2", "3", "1"], "target": "4"}
