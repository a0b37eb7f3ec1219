"""Records whose values have the wrong type, or are not valid Unicode, in the text-files dataset.

A hostile review found JSON-based training data whose text was a number or an object, or held a lone
surrogate escape (``"\\ud800"``), crashing ``fmkit validate --read-data`` and ``fmkit train`` with
TypeError / AttributeError / UnicodeEncodeError tracebacks (or passing validate, then crashing
train), ``fmkit evaluate --data`` accepting the same file, and labels that were JSON objects or lists
silently becoming classes named ``"{'a': 'neg'}"``. Each is now one line naming the file, the line
(or row) and the column, exit 2, and no run directory. Numbers as labels keep working (``1`` is the
class ``"1"``), and a JSON list of labels is read as the labels of a multi-label task.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from fmkit.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import tiny_recipe  # noqa: E402  (the repository's tests/conftest.py)

#: good records before the bad one: numbers as labels are fine and must not be what is refused
GOOD = [{"text": "good film great", "label": 1}, {"text": "bad film awful", "label": 0}] * 3


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def _jsonl(bad: str, good: list[dict] = GOOD):
    """A JSONL maker: the good records, a blank line, then ``bad`` (raw JSON text) on line len(good) + 2."""
    def make(tmp: Path) -> str:
        path = tmp / "bad.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in good) + "\n" + bad + "\n", encoding="utf-8")
        return str(path)
    return make


BAD_LINE = len(GOOD) + 2  # after the good records and a blank line (blank lines count as lines)
PAIR = {"text_pair_column": "pair"}
PAIRED = [dict(r, pair="a second text") for r in GOOD]


def _parquet_numbers(tmp: Path) -> str:
    import pandas as pd

    path = tmp / "bad.parquet"
    pd.DataFrame({"text": list(range(8)), "label": ["pos", "neg"] * 4}).to_parquet(path)
    return str(path)


def _json_document(rows: str):
    def make(tmp: Path) -> str:
        path = tmp / "bad.json"
        path.write_text('{"tr": [["good film", "pos"], ["bad film", "neg"], ' + rows + "]}")
        return str(path)
    return make


# (case, maker of the training file, other data fields, what the error says after FILE)
CASES = [
    ("text is a number", _jsonl('{"text": 5, "label": "pos"}'), {},
     f":{BAD_LINE}: the 'text' value must be a string; got a number"),
    ("text is an object", _jsonl('{"text": {"body": "good film"}, "label": "pos"}'), {},
     f":{BAD_LINE}: the 'text' value must be a string; got an object"),
    ("text is a list", _jsonl('{"text": ["good", "film"], "label": "pos"}'), {},
     f":{BAD_LINE}: the 'text' value must be a string; got a list"),
    ("text is a boolean", _jsonl('{"text": true, "label": "pos"}'), {},
     f":{BAD_LINE}: the 'text' value must be a string; got a boolean"),
    ("text of a named column is a number", _jsonl('{"review": 5, "label": "pos"}',
                                                  [{"review": r["text"], "label": r["label"]} for r in GOOD]),
     {"text_column": "review"}, f":{BAD_LINE}: the 'review' value must be a string; got a number"),
    ("text with a lone surrogate", _jsonl('{"text": "good \\ud800 film", "label": "pos"}'), {},
     f":{BAD_LINE}: 'text' is not valid Unicode (a lone UTF-16 surrogate \\ud800 at character 5"),
    ("label is an object", _jsonl('{"text": "good film", "label": {"a": "neg"}}'), {},
     f":{BAD_LINE}: the 'label' value must be a string or a number; got an object"),
    ("label is a list of a single-label task", _jsonl('{"text": "good film", "label": ["neg"]}'), {},
     f":{BAD_LINE}: the 'label' value must be a string or a number; got a list"),
    ("label with a lone surrogate", _jsonl('{"text": "good film", "label": "p\\udc80"}'), {},
     f":{BAD_LINE}: 'label' is not valid Unicode (a lone UTF-16 surrogate \\udc80"),
    ("text pair is a number", _jsonl('{"text": "good film", "pair": 7, "label": "pos"}', PAIRED), PAIR,
     f":{BAD_LINE}: the 'pair' value must be a string; got a number"),
    ("text pair is an object", _jsonl('{"text": "good film", "pair": {"x": "y"}, "label": "pos"}', PAIRED), PAIR,
     f":{BAD_LINE}: the 'pair' value must be a string; got an object"),
    ("text pair with a lone surrogate", _jsonl('{"text": "good film", "pair": "\\ud83d", "label": "pos"}', PAIRED),
     PAIR, f":{BAD_LINE}: 'pair' is not valid Unicode (a lone UTF-16 surrogate \\ud83d"),
    ("a Parquet text column of numbers", _parquet_numbers, {},
     ": row 1: the 'text' value must be a string; got a number"),
    ("a JSON document's record that is a number", _json_document("5"), {"json_keys": {"train": "tr"}},
     ": tr[2]: a record is a JSON object or a list"),
    ("a JSON document's list record with a number as text", _json_document('[5, "pos"]'),
     {"json_keys": {"train": "tr"}}, ": tr[2]: the 'text' value must be a string; got a number"),
]


def _recipe(tmp: Path, make, fields: dict) -> tuple[Path, str]:
    recipe = tiny_recipe(tmp, epochs=1)
    bad = make(tmp)
    recipe["data"].update(train=bad, **fields)
    recipe["data"].pop("test")
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path, bad


@pytest.mark.parametrize("case,make,fields,words", CASES, ids=[c[0] for c in CASES])
def test_a_record_of_the_wrong_type_is_named_by_file_line_and_column(tmp_path, capsys, case, make, fields, words):
    path, bad = _recipe(tmp_path, make, fields)
    code, said = _cli(capsys, "validate", str(path), "--read-data")
    assert code == 2 and bad + words in said and "Traceback" not in said, (case, said)
    code, said = _cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and bad + words in said and "Traceback" not in said, (case, said)
    assert len([line for line in said.splitlines() if line.strip()]) == 1, said
    assert not (tmp_path / "run").exists(), "bad data must leave no run directory behind"


def test_numbers_as_labels_train_and_evaluate_refuses_bad_records_alike(tmp_path, capsys):
    """0/1 labels keep working (classes "0" and "1", beside "neg" and "pos" here); ``fmkit evaluate
    --data`` reads a file the way training does, so it refuses the same records (it scored a number
    as text before)."""
    words = [{"text": "lovely superb film", "label": "pos"}, {"text": "dull poor film", "label": "neg"}]
    path, _ = _recipe(tmp_path, _jsonl('{"text": "good film", "label": 1}', (GOOD + words) * 3), {})
    code, said = _cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 0, said
    details = json.loads((tmp_path / "run" / "eval_details.json").read_text())
    assert sorted(details["data"]["labels"]) == ["0", "1", "neg", "pos"]
    for i, (case, make, fields, words) in enumerate(c for c in CASES if not c[2] and c[0] != "a Parquet text "
                                                    "column of numbers"):
        folder = tmp_path / f"bad{i}"
        folder.mkdir()
        bad = make(folder)
        code, said = _cli(capsys, "evaluate", str(tmp_path / "run"), "--data", bad)
        assert code == 2 and bad + words in said and "Traceback" not in said, (case, said)


def test_a_json_list_of_labels_is_the_labels_of_a_multi_label_task(tmp_path, capsys):
    """With task.multi_label, ``"label": ["pos", "a"]`` is two labels (numbers among them read as
    text), not one class named ``"['pos', 'a']"``; an object among them is refused by line."""
    rows = [{"text": "good film great", "label": ["pos", "a"]}, {"text": "bad film awful", "label": ["neg"]},
            {"text": "a film", "label": [1]}] * 4
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["task"]["multi_label"] = True
    recipe["data"].pop("test")
    train = tmp_path / "multi.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe["data"]["train"] = str(train)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, said = _cli(capsys, "validate", str(path), "--read-data", "--json")
    assert code == 0 and json.loads(said)["data"]["classes"] == 4, said  # pos, a, neg, 1
    with train.open("a") as f:
        f.write('{"text": "odd", "label": ["pos", {"a": 1}]}\n')
    code, said = _cli(capsys, "validate", str(path), "--read-data")
    assert code == 2 and f"{train}:13: the 'label' value must be a list of labels" in said, said
    assert "Traceback" not in said
