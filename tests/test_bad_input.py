"""Bad input, table-driven: every case gets a clear error (exit code, the field or file, its line)
and nothing is written or lost. docs/reliability.md lists these cases and what each gets.

Recipes go through ``fmkit validate`` and data through ``fmkit train``, both via the CLI's
``main()`` in-process (the same code path as the command, without a Python start per case).
"""
from __future__ import annotations


import errno
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_recipe

from fmkit.cli.main import main

BASE = """task:
  name: text-classification
  max_length: 32
model:
  name: hf-classifier
  pretrained: some/folder
data:
  train: data.csv
  clean: [drop-missing]
optimizer:
  name: adamw
  lr: 0.001
  weight_decay: 0.01
scheduler:
  name: cosine
  warmup_ratio: 0.1
train:
  epochs: 2
  device: auto
evaluate:
  monitor: accuracy
export:
  tolerance: 0.001
serve:
  port: 8000
"""


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def validate(tmp_path, capsys, text: str | bytes, *sets: str) -> tuple[int, list[dict]]:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    args = ["validate", str(path), "--json", "--skip-data"] + [x for s in sets for x in ("--set", s)]
    code, out, err = cli(capsys, *args)
    assert "Traceback" not in out + err
    return code, json.loads(out)["errors"]


def test_the_base_recipe_is_valid(tmp_path, capsys):
    assert validate(tmp_path, capsys, BASE) == (0, [])


# (case, edit of BASE: (old, new) or --set overrides, expected path, line, words in the message)
RECIPE_CASES = [
    ("negative lr", ("lr: 0.001", "lr: -0.1"), "optimizer.lr", 12, "greater than 0"),
    ("zero lr", ("lr: 0.001", "lr: 0"), "optimizer.lr", 12, "greater than 0"),
    ("NaN lr", ("lr: 0.001", "lr: .nan"), "optimizer.lr", 12, "finite"),
    ("infinite lr", ("lr: 0.001", "lr: .inf"), "optimizer.lr", 12, "finite"),
    ("lr 'inf' as text", ("lr: 0.001", "lr: inf"), "optimizer.lr", 12, "finite"),
    ("lr that overflows", ("lr: 0.001", "lr: 1e999"), "optimizer.lr", 12, "finite"),
    ("negative weight decay", ("weight_decay: 0.01", "weight_decay: -0.01"), "optimizer.weight_decay", 13,
     "greater than or equal to 0"),
    ("warmup_ratio above 1", ("warmup_ratio: 0.1", "warmup_ratio: 1.5"), "scheduler.warmup_ratio", 16,
     "less than or equal to 1"),
    ("warmup_ratio below 0", ("warmup_ratio: 0.1", "warmup_ratio: -0.2"), "scheduler.warmup_ratio", 16,
     "greater than or equal to 0"),
    ("max_length 0", ("max_length: 32", "max_length: 0"), "task.max_length", 3, "greater than or equal to 1"),
    ("unknown device", ("device: auto", "device: gpu"), "train.device", 19, "unknown device 'gpu'"),
    ("device with a bad index", ("device: auto", "device: cuda:x"), "train.device", 19, "unknown device"),
    ("monitor no metric computes", ("monitor: accuracy", "monitor: f1"), "evaluate.monitor", 21,
     "not computed by any configured metric"),
    ("early-stopping monitor typo", ("epochs: 2", "epochs: 2\n  early_stopping: {monitor: acuracy}"),
     "train.early_stopping.monitor", 19, "did you mean 'accuracy'"),
    ("task monitor dropped from metrics", ("monitor: accuracy", "metrics: [f1]"), "evaluate.metrics", 21,
     "the task monitors 'accuracy'"),
    ("negative tolerance", ("tolerance: 0.001", "tolerance: -0.001"), "export.tolerance", 23,
     "greater than or equal to 0"),
    ("negative port", ("port: 8000", "port: -1"), "serve.port", 25, "greater than or equal to 0"),
    ("port past 65535", ("port: 8000", "port: 70000"), "serve.port", 25, "less than or equal to 65535"),
    ("duplicate key", ("epochs: 2", "epochs: 2\n  epochs: 3"), "train.epochs", 19, "duplicate key 'epochs'"),
    ("duplicate section", ("serve:", "train:\n  epochs: 9\nserve:"), "train", 24, "duplicate section 'train'"),
    ("--set into a list item that does not exist", ["data.clean.3.name=drop-duplicates"], "data.clean.3.name",
     None, "data.clean has 1 item(s), so item 3 does not exist"),
    ("--set into a list that does not exist", ["data.augment.0.name=x"], "data.augment.0.name", None,
     "data.augment is not a list here"),
    ("--set with a negative index", ["data.clean.-1.name=x"], "data.clean.-1.name", None, "does not exist"),
    ("true where a number goes (was read as 1)", ("epochs: 2", "epochs: true"), "train.epochs", 18,
     "Input should be a number, not true"),
    ("--set yes where a number goes", ["train.batch_size=yes"], "train.batch_size", None,
     "Input should be a number, not true"),
    ("true for a task parameter (a plugin's model)", ("max_length: 32", "max_length: true"), "task.max_length", 3,
     "Input should be a number, not true"),
    # a third hostile review: each passed validate, then train wrote its run elsewhere or crashed
    ("a run name that climbs out of runs_dir", ["tracking.run_name=../../escaped"], "tracking.run_name", None,
     "is not a folder name"),
    ("a run name past the file system's limit", ["tracking.run_name=" + "x" * 300], "tracking.run_name", None,
     "too long for a folder name"),
    ("a seed past 64 bits (an overflow in the batch plan)", ["train.seed=9223372036854775808"], "train.seed", None,
     "less than or equal to 4294967295"),
    ("a negative split seed", ["data.split_seed=-1"], "data.split_seed", None, "greater than or equal to 0"),
]


@pytest.mark.parametrize("case,edit,path,line,words", RECIPE_CASES, ids=[c[0] for c in RECIPE_CASES])
def test_validate_reports_the_field_and_line(tmp_path, capsys, case, edit, path, line, words):
    text, sets = BASE, []
    if isinstance(edit, tuple):
        assert edit[0] in text
        text = text.replace(edit[0], edit[1], 1)
    else:
        sets = edit
    code, errors = validate(tmp_path, capsys, text, *sets)
    assert code == 2, case
    match = [e for e in errors if e["path"] == path]
    assert match, errors
    assert words in match[0]["message"], match[0]
    assert match[0]["line"] == line, match[0]
    assert match[0]["file"] == str(tmp_path / "recipe.yaml") if not sets else match[0]["file"].startswith("--set")


ENCODING_CASES = [
    ("latin-1 recipe", BASE.replace("data.csv", "donn\u00e9es.csv").encode("latin-1"), 8, "not UTF-8"),
    ("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "binary file"),  # NUL on line 3
    ("control character", BASE.replace("epochs: 2", "epochs: 2\x07").encode(), 18, "is this a text file"),
    # a third hostile review: nested aliases took memory without end (six levels: 670 MB; nine: ~100 GB);
    # deep nesting was a RecursionError
    ("nested aliases (billion laughs)",
     ("a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
         f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcde", "bcdef")) + BASE).encode(),
     None, "more than 100,000 values once its YAML aliases"),
    ("5,000 nested lists", ("task: " + "[" * 5000 + "]" * 5000 + "\n").encode(), None, "nests more than 64 levels"),
    ("3,000 nested mappings", ("".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "x\n").encode(),
     None, "nests more than 64 levels"),
]


@pytest.mark.parametrize("case,raw,line,words", ENCODING_CASES, ids=[c[0] for c in ENCODING_CASES])
def test_a_recipe_that_is_not_utf8_text_is_an_error_not_a_traceback(tmp_path, capsys, case, raw, line, words):
    started = time.monotonic()
    code, errors = validate(tmp_path, capsys, raw)
    assert code == 2 and time.monotonic() - started < 30, "validate took its time (memory without end?)"
    assert words in errors[0]["message"] and (line is None or errors[0]["line"] == line), errors


def test_a_recipe_path_that_is_not_a_regular_file_is_an_error(tmp_path, capsys, no_hang):
    os.mkdir(tmp_path / "folder.yaml")
    code, out, err = cli(capsys, "validate", str(tmp_path / "folder.yaml"))
    assert code == 2 and "is not a regular file" in err, err
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.yaml")
        started = time.monotonic()
        code, out, err = cli(capsys, "validate", str(tmp_path / "fifo.yaml"))
        assert code == 2 and "is not a regular file" in err, err
        assert time.monotonic() - started < 30, "validate blocked on the FIFO until the alarm"


def test_every_problem_is_reported_with_a_structural_one(tmp_path, capsys):
    text = (BASE.replace("epochs: 2", "epochs: many\n  epochs: 3").replace("lr: 0.001", "lr: -1")
            .replace("port: 8000", "port: -1") + "export:\n  formats: [onnxx]\n")
    code, errors = validate(tmp_path, capsys, text, "data.clean.5=x")
    assert code == 2
    paths = {e["path"] for e in errors}
    assert {"train.epochs", "optimizer.lr", "serve.port", "export", "data.clean.5"} <= paths, paths
    assert any("onnxx" in e["message"] for e in errors), errors  # the exporter too, though the structure failed


# ---------------------------------------------------------------------------------------- data
torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _fifo(path: Path) -> str:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(path)
    return str(path)


# (case, which split, file maker, words in the error)
DATA_CASES = [
    ("0-byte train file", "train", lambda p: _write(p, ""), "has no rows (the file is empty)"),
    ("header-only train file", "train", lambda p: _write(p, "text,label\n"), "has no rows (the file is only a header)"),
    ("header-only test file", "test", lambda p: _write(p, "text,label\n"), "data.test"),
    ("single-class train file", "train", lambda p: _write(p, "text,label\n" + "good film,pos\n" * 20),
     "1 class(es) ('pos') in"),
    ("only blank or NaN labels", "train", lambda p: _write(p, "text,label\ngood,\nbad,NaN\nfine,  \n"),
     "every row of"),
    ("FIFO as the train file", "train", _fifo, "is a FIFO (named pipe)"),
    ("FIFO as the test file", "test", _fifo, "data.test"),
    ("a relative train path that does not exist", "train", lambda p: "no-such-folder/train.csv",
     "data.train: no-such-folder/train.csv does not exist (relative paths are read from the current folder"),
    ("an absolute test path that does not exist", "test", lambda p: str(p.parent / "gone.csv"), "data.test:"),
    ("an empty folder as the train data", "train", lambda p: _folder(p.parent / "empty"),
     "no class sub-folders with text files"),
    ("plain text lines (no labels) to train a classifier", "train",
     lambda p: _write(p.with_suffix(".txt"), "good film\nbad film\n"), "is plain text, one example per line, without labels"),
]
#: the cases ``fmkit validate`` finds too, from a quick look (a single class or blank labels need the whole file)
QUICK_LOOK = {"0-byte train file", "header-only train file", "header-only test file", "FIFO as the train file",
              "FIFO as the test file", "a relative train path that does not exist",
              "an absolute test path that does not exist", "an empty folder as the train data",
              "plain text lines (no labels) to train a classifier"}


def _folder(path: Path) -> str:
    path.mkdir()
    (path / "pos").mkdir()  # a class sub-folder, but no file in it
    return str(path)


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) if reading the data blocks: a FIFO opened for reading
    waits for a writer forever. SIGALRM interrupts the blocked open()."""
    import signal

    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hung(signum, frame):
        raise TimeoutError("reading the data blocked for 60 s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case,split,make,words", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_is_a_clear_error_and_leaves_no_run(tmp_path, capsys, no_hang, case, split, make, words):
    recipe = tiny_recipe(tmp_path, epochs=1)
    bad = make(tmp_path / "bad.csv")
    recipe["data"][split] = bad
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 2, err
    assert "Traceback" not in err and words in err and bad in err, err
    assert not (tmp_path / "run").exists(), "bad data must leave no run directory behind"
    if case in QUICK_LOOK:  # validate says it before any training is tried
        code, out, err = cli(capsys, "validate", str(path))
        assert code == 2 and words in err and bad in err and "Traceback" not in err, (case, err)
    # validate --read-data reads the data as training does: it finds every case, the whole-file ones too
    code, out, err = cli(capsys, "validate", str(path), "--read-data")
    assert code == 2 and words in err and bad in err and "Traceback" not in err, (case, err)


def _bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# (case, data fields to set: value or maker of the path, words in the error); validate and train alike
DATA_FIELD_CASES = [
    ("a JSONL record that is not an object", {"train": lambda t: _write(t / "l.jsonl", "[1, 2]\n")},
     "l.jsonl:1: a record is a JSON object"),
    ("JSONL that is not JSON", {"train": lambda t: _write(t / "b.jsonl", "{bad\n")}, "b.jsonl:1: not valid JSON"),
    ("an empty JSON object", {"train": lambda t: _write(t / "e.jsonl", "{}\n")}, "has no column 'text'"),
    ("a latin-1 file read as UTF-8", {"train": lambda t: _bytes(t / "l1.csv", b"text,label\ncaf\xe9,x\n")},
     "is not utf-8 text"),
    ("an unknown encoding", {"encoding": "bogus"}, "unknown text encoding 'bogus'"),
    ("a codec that is not a text encoding", {"encoding": "rot13"}, "'rot13' is not a text encoding"),
    ("UTF-16 without a byte-order mark", {"encoding": "utf-16"}, "UTF-16 stream does not start with BOM"),
    ("format folder for a file", {"format": "folder"}, "is a file, but data.format is folder"),
    ("a folder read as CSV", {"train": lambda t: _folder(t / "f"), "format": "csv"},
     "is a folder, but data.format is csv"),
    ("no training data", {"train": ""}, "no training data: set data.train"),
    ("plain text lines as the validation split of a classifier",
     {"validation": lambda t: _write(t / "v.txt", "good film\n")}, "(data.validation) is plain text"),
    # a second hostile review
    ("a negative sample limit", {"limits": {"train": -1}}, "data.limits.train"),
    ("a negative carved split size", {"split_sizes": {"validation": -5}}, "data.split_sizes.validation"),
    ("label files and a train file", {"label_files": {"a": lambda t: _write(t / "a.txt", "x\n"),
                                                      "b": lambda t: _write(t / "b.txt", "y\n")}},
     "give data.train or data.label_files, not both"),
    ("label files of one label", {"train": None, "label_files": {"a": lambda t: _write(t / "a.txt", "x\n")}},
     "names one label"),
    ("a label file that is a folder", {"train": None, "label_files": {"a": lambda t: _folder(t / "lf"),
                                                                       "b": lambda t: _write(t / "b.txt", "y\n")}},
     "data.label_files.a: "),
    ("the label column as the pair column", {"text_pair_column": "label"}, "is also the label column"),
    ("a carved test split beside a test file", {"split_sizes": {"test": 10}}, "data.split_sizes.test carves"),
    ("a JSON document's keys without the document", {"train": None, "json_keys": {"train": "tr"}},
     "no training data"),
    ("a test file without the label column", {"test": lambda t: _write(t / "nl.csv", "text\ngood film\n")},
     "has no column 'label'"),
    ("a CSV read as Parquet", {"format": "parquet"}, "is not a Parquet file"),
    ("an empty label separator (multi-label silently off)", {"label_separator": ""}, "data.label_separator"),
    ("a ';'-separated file read as CSV", {"train": lambda t: _write(t / "semi.csv", "text;label\ngood film;pos\n")},
     "the file looks ';'-separated"),
    ("a JSON key the document lacks", {"train": lambda t: _write(t / "full.json", '{"tr": [["good film", "pos"]]}'),
                                       "json_keys": {"train": "nope"}}, "no key 'nope' (data.json_keys.train)"),
]
#: what only a whole read finds: ``train`` refuses it, ``validate`` (a quick look) cannot
TRAIN_FINDS = [
    ("a CSV row with more cells than the header (an unquoted comma)",
     {"train": lambda t: _write(t / "extra.csv", "text,label\ngood film,pos\ngood, and long film,pos\n")},
     "extra.csv:3: more cells than the header's 2 columns"),
    ("a validation share that holds out nothing (every class has one example)",  # it validated on the training data
     {"train": lambda t: _write(t / "uniq.csv", "text,label\n" + "".join(f"film {i},c{i}\n" for i in range(40))),
      "test": None}, "data.validation_split 0.2 of 40 training example(s) holds out none (a stratified hold-out"),
    ("a later JSONL line that is not an object",
     {"train": lambda t: _write(t / "late.jsonl", '{"text": "good film", "label": "pos"}\n' * 5 + "5\n")},
     "late.jsonl:6: a record is a JSON object"),
    ("a test file with a label training never saw",
     {"test": lambda t: _write(t / "unseen.csv", "text,label\ngood film,pos\nodd film,meh\n")},
     "labels the model was never trained on: 'meh' (1)"),
]


def _resolve(value, tmp: Path):
    if isinstance(value, dict):
        return {k: _resolve(v, tmp) for k, v in value.items()}
    return value(tmp) if callable(value) else value


@pytest.mark.parametrize("case,fields,words", TRAIN_FINDS, ids=[c[0] for c in TRAIN_FINDS])
def test_train_refuses_data_only_a_whole_read_finds(tmp_path, capsys, case, fields, words):
    """A traceback (a non-object JSONL line past the first) and a NaN "divergence" (a test label
    the model never saw) before: now one line naming the file and line, or the labels."""
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["data"].update(_resolve(fields, tmp_path))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and words in err and "Traceback" not in err, (case, err)
    assert not (tmp_path / "run").exists()
    code, out, err = cli(capsys, "validate", str(path))  # a quick look cannot see it ...
    assert code == 0, (case, err)
    code, out, err = cli(capsys, "validate", str(path), "--read-data")  # ... a whole read does
    assert code == 2 and words in err and "(read with --read-data" in err and "Traceback" not in err, (case, err)


def test_validate_read_data_reports_what_training_would_read(tmp_path, capsys):
    """--read-data on good data: valid, with examples per split, classes and the rows cleaning drops
    (as text and as JSON); it writes nothing, and it cannot be combined with --skip-data."""
    recipe = tiny_recipe(tmp_path, epochs=1)
    train = Path(recipe["data"]["train"])
    train.write_text(train.read_text() + "a row without a label,\n")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(capsys, "validate", str(path), "--read-data")
    assert code == 0, err
    assert "valid" in out and "train " in out and "examples" in out and "2 classes" in out, out
    assert "train/blank-label: 1" in out, out
    code, out, err = cli(capsys, "validate", str(path), "--read-data", "--json")
    found = json.loads(out)
    assert found["valid"] and found["data"]["classes"] == 2 and found["data"]["dropped"] == {"train/blank-label": 1}
    assert found["data"]["examples"]["train"] > 0, found
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "validate --read-data must write nothing"
    code, out, err = cli(capsys, "validate", str(path), "--read-data", "--skip-data")
    assert code == 2 and "--skip-data" in err, err


@pytest.mark.parametrize("case,fields,words", DATA_FIELD_CASES, ids=[c[0] for c in DATA_FIELD_CASES])
def test_validate_and_train_refuse_the_same_data(tmp_path, capsys, case, fields, words):
    """What a hostile review found ``fmkit validate`` calling valid (or crashing on: an unknown
    encoding was a LookupError) while ``fmkit train`` refused it or crashed (format: folder on a
    file was a NotADirectoryError; plain text as the validation split trained, scored accuracy 0)."""
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["data"].update(_resolve(fields, tmp_path))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "validate", str(path))
    assert code == 2 and words in err and "Traceback" not in err, (case, out, err)
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and words in err and "Traceback" not in err, (case, err)
    assert not (tmp_path / "run").exists()


def test_blank_rows_are_dropped_counted_and_named(tmp_path, capsys, caplog):
    recipe = tiny_recipe(tmp_path, epochs=1)
    rows = Path(recipe["data"]["train"]).read_text().splitlines()
    # data rows 2 and 3: blank label and NaN label; data row 5: blank text
    rows[2:2] = ["good film,", "awful film,NaN"]
    rows.insert(5, "   ,pos")
    recipe["data"]["train"] = _write(tmp_path / "train.csv", "\n".join(rows) + "\n")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    details = json.loads((tmp_path / "run" / "eval_details.json").read_text())
    assert details["data"]["dropped"] == {"train/blank-label": 2, "train/blank-text": 1}
    assert sorted(details["data"]["labels"]) == ["neg", "pos"]  # no "", "NaN" or "nan" class
    assert "data rows 2, 3" in caplog.text and "data rows 5" in caplog.text


# ---------------------------------------------------------------------------------------- runs
def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One short finished run (one epoch, 12 steps) to resume, export and fill the disk of."""
    tmp = tmp_path_factory.mktemp("run")
    recipe = tiny_recipe(tmp, epochs=1)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--run-dir", str(tmp / "run")]) == 0
    return tmp, path, recipe


def _copy_run(finished_run, tmp_path) -> Path:
    import shutil

    src = finished_run[0] / "run"
    shutil.copytree(src, tmp_path / "run")
    return tmp_path / "run"


RESUME_REFUSED = [
    ("learning rate", ["optimizer.lr=0.1"], ["optimizer.lr: 0.003 in the run, 0.1 now"]),
    ("max_length and batch size", ["task.max_length=8", "train.batch_size=4"],
     ["task.max_length: 16 in the run, 8 now", "train.batch_size: 8 in the run, 4 now"]),
    ("model", ["model.config.hidden_size=32"], ["model.config.hidden_size"]),
    ("data", ["data.validation_split=0.3"], ["data.validation_split"]),
]


@pytest.mark.parametrize("case,sets,words", RESUME_REFUSED, ids=[c[0] for c in RESUME_REFUSED])
def test_resume_refuses_a_recipe_that_changes_model_or_data_and_writes_nothing(finished_run, tmp_path, capsys,
                                                                              case, sets, words):
    run = _copy_run(finished_run, tmp_path)
    before = _snapshot(run)
    args = ["train", str(finished_run[1]), "--resume", str(run)] + [x for s in sets for x in ("--set", s)]
    code, out, err = cli(capsys, *args)
    assert code == 2 and "Traceback" not in err
    for w in words:
        assert w in err, err
    assert _snapshot(run) == before, "a refused resume must write nothing"


def test_resume_records_allowed_changes_as_an_amendment(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    original = (run / "recipe.yaml").read_bytes()
    code, out, err = cli(capsys, "train", str(finished_run[1]), "--resume", str(run), "--set", "train.epochs=2")
    assert code == 0, err
    assert (run / "recipe.yaml").read_bytes() == original, "the run's recipe.yaml is never rewritten"
    amendments = yaml.safe_load((run / "recipe.amendments.yaml").read_text())
    assert amendments[0]["changes"] == {"train.epochs": {"from": 1, "to": 2}}
    assert amendments[0]["resumed_at_step"] == 12
    assert (run / "checkpoints" / "step-00000024").is_dir(), "the amended epochs were used"
    # the run's own recipe.yaml now resumes with the amended settings and nothing new is recorded
    code, out, err = cli(capsys, "train", str(run / "recipe.yaml"), "--resume", str(run))
    assert code == 0, err
    assert len(yaml.safe_load((run / "recipe.amendments.yaml").read_text())) == 1


def test_resume_refuses_data_whose_labels_changed(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    recipe = dict(finished_run[2])
    text = Path(recipe["data"]["train"]).read_text().replace(",pos", ",positive")
    recipe["data"] = {**recipe["data"], "train": _write(tmp_path / "relabelled.csv", text)}
    before = _snapshot(run)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--resume", str(run))
    assert code == 2
    assert "data.train" in err, err  # the path changed: refused as a data change
    # the same path with other content: the labels are compared
    Path(finished_run[2]["data"]["train"]).rename(tmp_path / "orig.csv")
    try:
        Path(finished_run[2]["data"]["train"]).write_text(text)
        code, out, err = cli(capsys, "train", str(finished_run[1]), "--resume", str(run))
    finally:
        (tmp_path / "orig.csv").replace(finished_run[2]["data"]["train"])
    assert code == 2 and "re-map" in err and "'positive'" in err, err
    assert _snapshot(run) == before


def test_evaluate_refuses_a_fifo_and_drops_blank_labels(finished_run, tmp_path, capsys, no_hang):
    run = finished_run[0] / "run"
    code, out, err = cli(capsys, "evaluate", str(run), "--data", _fifo(tmp_path / "fifo.csv"), "--json")
    assert code == 2 and "--data: " in err and "FIFO" in err, err
    rows = Path(finished_run[2]["data"]["test"]).read_text().splitlines()
    labelled = _write(tmp_path / "a.csv", "\n".join(rows) + "\n")
    blanks = _write(tmp_path / "b.csv", "\n".join(rows + ["good film,", "bad film,NaN"]) + "\n")
    code, out_a, err = cli(capsys, "evaluate", str(run), "--data", labelled, "--json")
    assert code == 0, err
    code, out_b, err = cli(capsys, "evaluate", str(run), "--data", blanks, "--json")
    assert code == 0, err
    assert json.loads(out_a) == json.loads(out_b), "rows without a label are not scored"


def _fill_disk_after(monkeypatch, calls_allowed: int, at: str | None = None):
    """Weights writes fail with a full disk after ``calls_allowed`` of them (or, with ``at``, from
    the first write whose path contains it)."""
    import fmkit.engine.checkpoint as ck

    real, calls = ck.save_weights, []

    def save_weights(model, path):
        calls.append(path)
        if (at in str(path)) if at else len(calls) > calls_allowed:
            Path(path).write_bytes(b"\0" * 1000)  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(model, path)

    monkeypatch.setattr(ck, "save_weights", save_weights)


def test_disk_full_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    from fmkit.engine.checkpoint import finite_weights

    recipe = tiny_recipe(tmp_path, epochs=2)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    _fill_disk_after(monkeypatch, 0, at="step-00000024")  # best and step-12 are written, step-24 meets a full disk
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "no space left" in err and "step-00000024" in err and "MiB free" in err, err
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best", "step-00000012"], "no half-written checkpoint"
    assert finite_weights(ckpts / "step-00000012" / "model.safetensors")


def test_disk_full_during_an_export_keeps_the_previous_export(finished_run, tmp_path, capsys, monkeypatch):
    run = _copy_run(finished_run, tmp_path)
    assert cli(capsys, "export", str(run), "--format", "safetensors")[0] == 0
    before = _snapshot(run / "exports")
    _fill_disk_after(monkeypatch, 0)
    code, out, err = cli(capsys, "export", str(run), "--format", "safetensors")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no space left" in err, err
    assert str(run / "exports" / "safetensors") in err
    assert _snapshot(run / "exports") == before and not list((run / "exports").glob(".tmp-*"))


def test_disk_full_while_caching_is_one_line(tmp_path, capsys, monkeypatch):
    import fmkit.utils.atomic as atomic

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell the cache file from the others")
    real = atomic._write

    def write(fd, data):
        if "cache" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(atomic, "_write", write)
    recipe = tiny_recipe(tmp_path, epochs=1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no space left" in err, err
    assert str(tmp_path / "cache") in err
    cache = tmp_path / "cache"
    kept = [p for p in cache.rglob("*") if p.is_file()]
    # a tokenizer trained on the data is published whole before the features are cached; nothing else
    assert all(p.relative_to(cache).parts[0] == "tokenizers" and not p.relative_to(cache).parts[1].startswith(".tmp")
               for p in kept), f"a partial cache file was left: {kept}"
    assert not [p for p in cache.iterdir() if p.name != "tokenizers"], "no partial cache file"


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    import fmkit.utils.atomic as atomic
    from fmkit.errors import DiskFullError

    target = tmp_path / "state.json"
    target.write_text("old")

    def full(fd, data):
        os.write(fd, data[:3])
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_write", full)
    with pytest.raises(DiskFullError, match="state.json"):
        atomic.atomic_write_text(target, "new content")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


# ---------------------------------------------------------------------------------------- divergence
def test_a_diverged_run_fails_and_keeps_no_nan_best(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, epochs=1, checkpoint_every=4)
    recipe["optimizer"]["lr"] = 1e6
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and "Traceback" not in err
    assert "diverged" in err or "non-finite losses" in err, err
    assert "last good checkpoint is kept" not in err or "step-" in err.split("last good checkpoint is kept")[1]
    ckpts = tmp_path / "run" / "checkpoints"
    if (ckpts / "best").exists():  # only when an evaluation before the divergence was finite
        best = json.loads((ckpts / "best" / "meta.json").read_text())
        assert math.isfinite(best["value"]) and math.isfinite(best["metrics"]["loss"]), best
    assert not (tmp_path / "run" / "eval.json").exists()
    from fmkit.engine.checkpoint import finite_weights

    assert all(finite_weights(d / "model.safetensors") for d in ckpts.glob("step-*")), \
        "checkpoints holding NaN weights are set aside, not resumed from"


def test_divergence_after_good_checkpoints_names_the_last_finite_one(tmp_path, capsys):
    from fmkit.engine.checkpoint import finite_weights

    recipe = tiny_recipe(tmp_path, epochs=2)
    recipe["plugins"] = ["helpers.diverge"]
    recipe["model"] = {"name": "test-diverging", "poison_at": 15}  # NaN weights during the second epoch
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1
    ckpts = tmp_path / "run" / "checkpoints"
    assert "diverged" in err and f"the last good checkpoint is kept: {ckpts / 'step-00000012'}" in err, err
    assert finite_weights(ckpts / "best" / "model.safetensors")
    assert json.loads((ckpts / "best" / "meta.json").read_text())["step"] == 12
    assert not (tmp_path / "run" / "eval.json").exists()


def test_non_finite_losses_say_no_checkpoint_is_kept_when_none_exists(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["plugins"] = ["helpers.faults"]
    recipe["model"] = {"name": "test-faulty", "nan_calls": list(range(1, 50))}
    recipe["train"]["max_bad_steps"] = 3
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and "non-finite losses" in err
    assert "last good checkpoint is kept" not in err and "no checkpoint with finite weights" in err, err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_set_takes_a_string_as_typed_unless_quoted(tmp_path):
    """YAML cut ``exp #3`` at its comment and read ``|`` as an empty string (which turned a
    multi-label separator off, silently); numbers, lists and quoted strings keep YAML's reading."""
    from fmkit.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path)))
    assert load_recipe(str(path), ["tracking.run_name=2024-01-01"]).tracking.run_name == "2024-01-01"  # not a date
    assert load_recipe(str(path), ["tracking.run_name=1:30"]).tracking.run_name == "1:30"  # not 90 (base 60)
    recipe = load_recipe(str(path), ["tracking.run_name=exp #3", "data.label_separator=|", "train.epochs=3",
                                     "data.text_column='quoted #1'", "task.max_length= 8 "])
    assert recipe.tracking.run_name == "exp #3"
    params = recipe.data.dataset_params()
    assert params["label_separator"] == "|" and params["text_column"] == "quoted #1", params
    assert recipe.train.epochs == 3 and recipe.task.as_dict()["max_length"] == 8


def test_resume_with_an_empty_path_is_refused_not_a_new_run(tmp_path, capsys):
    """``--resume "$RUN"`` with RUN unset started a new run silently."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, epochs=1)))
    code, out, err = cli(capsys, "train", str(path), "--resume", "")
    assert code == 2 and "--resume was given an empty path" in err, err
    assert not (tmp_path / "runs").exists()


def test_new_recipe_refuses_a_fifo_or_a_device_as_data(tmp_path, capsys, no_hang):
    """``--data /dev/zero`` read until memory ran out; a FIFO blocked forever."""
    cases = [("/dev/zero", "is a device")] if os.path.exists("/dev/zero") else []
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.csv")
        cases.append((str(tmp_path / "pipe.csv"), "is a FIFO (named pipe)"))
    for data, words in cases:
        code, out, err = cli(capsys, "new", "recipe", "text-classification", "--data", data,
                             "-o", str(tmp_path / "r.yaml"))
        assert code == 2 and words in err and "Traceback" not in err, err
        assert not (tmp_path / "r.yaml").exists()


@pytest.mark.parametrize("sets,words", [
    (["model.config.hidden_size=15"], "model.config cannot build a 'bert' model"),
    (["model.config.model_type=nope"], "model.config cannot build a 'nope' model"),
    (["task.max_length=64"], "task.max_length 64 is more than the model's 32 positions"),
], ids=["hidden size not a multiple of the heads", "an unknown model type", "max_length past the positions"])
def test_a_model_the_recipe_cannot_build_is_one_line_and_leaves_no_run(tmp_path, capsys, sets, words):
    """Each passed validate, then train crashed with a traceback after its run directory existed
    (max_length only at the first text that long, in the middle of training)."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, epochs=1)))
    code, out, err = cli(capsys, "train", str(path), *[x for s in sets for x in ("--set", s)])
    assert code == 2 and words in err and "Traceback" not in err, err
    runs = tmp_path / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")], \
        list(runs.iterdir())


def test_a_test_file_that_is_the_training_file_is_said(tmp_path, capsys, caplog):
    """``test: *train`` (a YAML alias) scored the model on its own training examples without a word."""
    import logging

    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["data"]["test"] = recipe["data"]["train"]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        code, out, err = cli(capsys, "validate", str(path), "--read-data")
    assert code == 0 and "data.test" in caplog.text and "is the training file itself" in caplog.text, caplog.text


def test_overwrite_replaces_runs_only_and_a_failed_run_gives_the_old_one_back(tmp_path, capsys, monkeypatch):
    """--overwrite deleted any folder holding a file named recipe.yaml (a project, the current folder),
    and a new run that then failed (a recipe typo) had already deleted the run it was to replace."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, epochs=1)))
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "recipe.yaml").write_text("task: x\n")
    (project / "NOTES.md").write_text("keep")
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(project), "--overwrite")
    assert code == 2 and "not an fmkit run directory" in err, err
    assert (project / "NOTES.md").read_text() == "keep" and (project / "src").is_dir()
    old = tmp_path / "old"
    assert cli(capsys, "train", str(path), "--run-dir", str(old))[0] == 0
    (old / "NOTES.md").write_text("mine")  # a run folder the user added a file to
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(old), "--overwrite")
    assert code == 2 and "holds files a run does not write (NOTES.md)" in err, err
    (old / "NOTES.md").unlink()
    before = sorted(str(p.relative_to(old)) for p in old.rglob("*"))
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(old), "--overwrite",
                         "--set", "model.config.hidden_size=15")
    assert code == 2 and "model.config cannot build" in err, err
    assert sorted(str(p.relative_to(old)) for p in old.rglob("*")) == before, "the old run was not given back"
    assert not [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(capsys, "train", str(path), "--run-dir", str(empty), "--set", "model.config.hidden_size=15")
    assert code == 2 and empty.is_dir() and not list(empty.iterdir())  # a folder that was there stays
    monkeypatch.chdir(old)
    code, out, err = cli(capsys, "train", str(path), "--run-dir", ".", "--overwrite")
    assert code == 2 and "is the current folder" in err and "Traceback" not in err, err
    assert sorted(str(p.relative_to(old)) for p in old.rglob("*")) == before


def test_validate_checks_prune_source_as_train_does(tmp_path, capsys):
    """validate said valid for a prune.source that does not exist or is not a run; train refused it."""
    recipe = tiny_recipe(tmp_path, epochs=1)
    (tmp_path / "notarun").mkdir()
    for source, words in ((str(tmp_path / "nope"), "is not a run directory"),
                          (str(tmp_path / "notarun"), "is not a run directory")):
        recipe["prune"] = {"source": source, "heads": 0.5}
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        code, out, err = cli(capsys, "validate", str(path), "--json")
        errors = json.loads(out)["errors"]
        assert code == 2 and any(e["path"] == "prune.source" and words in e["message"] for e in errors), errors
