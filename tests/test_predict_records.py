"""Prediction files of records: CSV rows and JSON Lines records are inputs (the task picks what it
reads from each), predictions echo their input, and uploads of such files over HTTP give one
answer per record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.serving import tiny_export

TEXTS = ["good film", "bad film", "a great and moving story", "awful"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return str(tiny_export(tmp_path_factory))


def _expected(export):
    import fmkit

    return fmkit.load(export).predict(TEXTS)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_csv_of_rows_predicts_the_text_column_and_echoes_it(export, tmp_path):
    from fmkit.engine.predict_file import predict_file

    src = tmp_path / "rows.csv"  # the text is not the first column: the task picks it by name
    src.write_text("id,text,label\n" + "".join(f"{i},\"{t}\",x\n" for i, t in enumerate(TEXTS)))
    assert predict_file(export, str(src), str(tmp_path / "out.jsonl")) == len(TEXTS)
    rows = _read(tmp_path / "out.jsonl")
    assert [r["input"] for r in rows] == TEXTS
    assert [r["label"] for r in rows] == [p["label"] for p in _expected(export)]


def test_jsonl_records_and_one_column_csv(export, tmp_path):
    from fmkit.engine.predict_file import predict_file

    src = tmp_path / "records.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in
                             [{"text": TEXTS[0]}, {"input": TEXTS[1]}, TEXTS[2], {"text": TEXTS[3], "id": 7}]) + "\n")
    assert predict_file(export, str(src), str(tmp_path / "a.jsonl")) == 4
    one = tmp_path / "one.csv"
    one.write_text("sentence\n" + "".join(f"{t}\n" for t in TEXTS))
    assert predict_file(export, str(one), str(tmp_path / "b.csv")) == 4
    import csv

    b = list(csv.DictReader((tmp_path / "b.csv").open()))
    expected = [p["label"] for p in _expected(export)]
    assert [r["label"] for r in _read(tmp_path / "a.jsonl")] == expected
    assert [r["input"] for r in b] == TEXTS and [r["label"] for r in b] == expected


def test_broken_record_files_name_the_line(export, tmp_path):
    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import DataError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        predict_file(export, str(bad), str(tmp_path / "o.jsonl"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,x\ntoo,many,cells\n")
    with pytest.raises(DataError, match=r"ragged.csv:3: more cells"):
        predict_file(export, str(ragged), str(tmp_path / "o.jsonl"))
    assert not (tmp_path / "o.jsonl").exists()


def test_uploaded_record_files_give_one_answer_per_record(export):
    from fastapi.testclient import TestClient

    from fmkit.serve.app import create_app

    expected = [p["label"] for p in _expected(export)]
    csv_body = "text,label\n" + "".join(f"{t},x\n" for t in TEXTS[:2])
    jsonl_body = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS[2:])
    with TestClient(create_app(export)) as c:
        r = c.post("/v1/predict/files?records=true",
                   files=[("files", ("a.csv", csv_body, "text/csv")), ("files", ("b.jsonl", jsonl_body, "text/plain"))])
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["input"] for p in preds] == TEXTS and [p["label"] for p in preds] == expected
        r = c.post("/v1/predict/files?records=true", files=[("files", ("a.txt", "hello", "text/plain"))])
        assert r.status_code == 400 and "files[0]" in r.text and ".csv or .jsonl" in r.text
        r = c.post("/v1/predict/files?records=true", files=[("files", ("b.jsonl", "{nope\n", "text/plain"))])
        assert r.status_code == 400 and "b.jsonl:1" in r.text
        # without records=true an upload is one input, as before
        r = c.post("/v1/predict/files", files=[("files", ("t.txt", TEXTS[0], "text/plain"))])
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1


def test_record_files_with_long_cells_deep_json_and_unicode_line_separators(tmp_path):
    """A CSV cell past csv's 131,072-character default, JSON nested too deeply or with a 5,000-digit
    number: a DataError naming the file and line (they were 500s on the server); U+2028 inside a JSON
    string is not a line break."""
    from fmkit.errors import DataError
    from fmkit.records import read_records

    assert len(read_records("text\n" + "a" * 200_000 + "\n", "big.csv")[0]["text"]) == 200_000
    assert read_records('"a\u2028b"\n{"x": 1}\r\n', "x.jsonl") == ["a\u2028b", {"x": 1}]
    with pytest.raises(DataError, match="q.csv:2: not valid CSV: unexpected end of data \\(a quote that is never closed"):
        read_records('text,label\n"unterminated,x\n', "q.csv")  # was one input holding the rest of the file
    assert read_records('text\n"a ""quoted"" word"\n', "q.csv") == [{"text": 'a "quoted" word'}]
    for text, words in (("[" * 3000 + "]" * 3000, "d.jsonl:1: not valid JSON: nested too deeply"),
                        ('{"ok": 1}\n' + "1" * 5000, "d.jsonl:2: not valid JSON: Exceeds the limit")):
        with pytest.raises(DataError, match=words.replace("(", "\\(")):
            read_records(text, "d.jsonl")


def test_predict_names_unreadable_inputs_and_unwritable_outputs(export, tmp_path, capsys):
    """A non-UTF-8 input file, an output path that is a folder or lies under a file: one line, exit 2,
    nothing written (each was a traceback)."""
    from fmkit.cli.main import main

    good = tmp_path / "in.txt"
    good.write_text("good film\n")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"ok\n\xff\xfe\x00bad\n")
    folder = tmp_path / "outdir"
    folder.mkdir()
    for args, words in (([str(binary)], "is not UTF-8 text (invalid start byte: byte 0xff at offset 3)"),
                        ([str(good), "-o", str(folder)], "it is a folder; give a file path"),
                        ([str(good), "-o", str(good / "out.jsonl")], "in.txt is a file, not a folder")):
        assert main(["predict", export, *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
    assert list(folder.iterdir()) == [] and good.read_text() == "good film\n"


def test_an_empty_input_says_so_and_evaluate_on_an_export_names_the_mistake(export, tmp_path, capsys):
    from fmkit.cli.main import main

    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert main(["predict", export, str(empty)]) == 0
    assert "holds no inputs" in capsys.readouterr().err  # it printed nothing at all
    data = tmp_path / "d.csv"
    data.write_text("text,label\ngood film,pos\n")
    assert main(["evaluate", export, "--data", str(data)]) == 2
    assert "is an export folder, which holds no checkpoints" in capsys.readouterr().err


def test_a_record_the_task_cannot_take_is_named_by_file_and_line(export, tmp_path):
    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import DataError

    src = tmp_path / "mixed.jsonl"
    src.write_text('{"text": "good film"}\n\n{"text": 5}\n')
    with pytest.raises(DataError, match=r"mixed.jsonl:3: a text input must be a string.*got int"):
        predict_file(export, str(src), str(tmp_path / "o.jsonl"))
    assert not (tmp_path / "o.jsonl").exists()
    from fmkit.records import read_located_records

    # a CSV row is located at the line it starts on, past quoted cells that span lines
    assert [w for _, w in read_located_records('text,label\n"two\nlines",x\n,\nc,y\n', "r.csv")] == ["r.csv:2", "r.csv:5"]


def test_a_folder_of_text_files_predicts_their_texts_and_names_each_file(export, tmp_path):
    from fmkit.engine.predict_file import predict_file

    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    for i, t in enumerate(TEXTS):
        (folder / ("sub" if i % 2 else "") / f"{i}.txt").write_text(t)
    assert predict_file(export, str(folder), str(tmp_path / "o.jsonl"), batch_size=3) == len(TEXTS)
    rows = _read(tmp_path / "o.jsonl")
    by_name = {r["input"]: r for r in rows}
    assert sorted(by_name) == sorted(str(p) for p in folder.rglob("*.txt"))  # each answer names its file
    expected = dict(zip(TEXTS, _expected(export)))
    for name, r in by_name.items():  # the model read the file's text, not its path
        assert r["label"] == expected[TEXTS[int(Path(name).stem)]]["label"]
        assert r["scores"] == pytest.approx(expected[TEXTS[int(Path(name).stem)]]["scores"], abs=1e-5)


def test_standard_input_is_read_with_a_dash(export, tmp_path, monkeypatch, capsys, caplog):
    import io

    from fmkit.cli.main import main

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(TEXTS).encode() + b"\n\n")))
    assert main(["predict", export, "-"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in out] == TEXTS
    assert [r["label"] for r in out] == [p["label"] for p in _expected(export)]
    records = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:2]) + '{"text": [1]}\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(records.encode())))
    assert main(["predict", export, "-", "--input-format", "jsonl", "-o", str(tmp_path / "p.jsonl")]) == 2
    assert "<stdin>:3" in capsys.readouterr().err and not (tmp_path / "p.jsonl").exists()
    import logging

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(records.encode())))
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        assert main(["predict", export, "-", "-o", str(tmp_path / "q.jsonl")]) == 0  # read as texts, as documented
    assert "--input-format jsonl" in caplog.text


def test_predict_refuses_what_a_hostile_review_found(export, tmp_path, monkeypatch, capsys):
    """Each was a traceback or a silent wrong result: a lone surrogate in a JSONL record, a file of
    a folder that cannot be read, `-o .` (found only after every prediction), a closed standard
    input, a JSONL file read with --input-format csv, --input-format on a folder."""
    import os

    from fmkit.cli.main import main

    def run(*args):
        code = main(["predict", export, *args])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return code, err

    (tmp_path / "s.jsonl").write_text('{"text": "fine"}\n{"text": "bad \\ud800"}\n')
    code, err = run(str(tmp_path / "s.jsonl"))
    assert code == 2 and "s.jsonl:2: not valid Unicode" in err and "surrogate" in err, err
    if os.path.exists("/proc/self/mem"):  # a file that exists but cannot be read (EIO)
        folder = tmp_path / "unreadable"
        folder.mkdir()
        (folder / "a.txt").write_text("good film")
        (folder / "mem").symlink_to("/proc/self/mem")
        code, err = run(str(folder), "-o", str(tmp_path / "u.jsonl"))
        assert code == 2 and "mem: cannot read it" in err and not (tmp_path / "u.jsonl").exists(), err
    (tmp_path / "in.txt").write_text("good film\n")
    monkeypatch.chdir(tmp_path)
    code, err = run("in.txt", "-o", ".")
    assert code == 2 and "it is a folder" in err, err
    monkeypatch.setattr("sys.stdin", None)
    code, err = run("-")
    assert code == 2 and "standard input is closed" in err, err
    (tmp_path / "m.jsonl").write_text('{"text": "good film"}\n{"text": "bad film"}\n')
    code, err = run("m.jsonl", "--input-format", "csv")
    assert code == 2 and "--input-format jsonl" in err, err
    code, err = run(str(tmp_path), "--input-format", "lines")
    assert code == 2 and "is a folder" in err, err


def test_line_numbers_and_outputs_match_the_files(export, tmp_path):
    """Lines end at \\n only (a form feed or U+2028 inside a text is not a new input), a CSV row is
    named by the line it starts on after blank lines, a file name that is not UTF-8 can be written
    to a CSV, and OUT.CSV is CSV."""
    import csv
    import os

    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import DataError

    text = tmp_path / "t.txt"
    text.write_text("good\x0cfilm\u2028here\n\nbad film\n")
    assert predict_file(export, str(text), str(tmp_path / "o.jsonl")) == 2
    assert [r["input"] for r in _read(tmp_path / "o.jsonl")] == ["good\x0cfilm\u2028here", "bad film"]
    ragged = tmp_path / "r.csv"
    ragged.write_text("text,intent\nhello,x\n\n\na,b,c\n")
    with pytest.raises(DataError, match=r"r.csv:5: more cells"):
        predict_file(export, str(ragged), None)
    folder = tmp_path / "names"
    folder.mkdir()
    odd = os.fsencode(folder) + b"/x\xff.txt"
    with open(odd, "wb") as f:
        f.write(b"good film")
    assert predict_file(export, str(folder), str(tmp_path / "OUT.CSV")) == 1
    rows = list(csv.DictReader((tmp_path / "OUT.CSV").open(encoding="utf-8")))
    assert rows[0]["input"].endswith("x\\xff.txt") and rows[0]["label"]


def test_outputs_never_destroy_inputs_links_or_devices(export, tmp_path, capsys):
    """Found by a second hostile review: `-o` equal to the input replaced it; `-o -` wrote a file
    named "-"; `-o` through a link replaced the link (through a link to a device, the device node);
    a 245-character name failed after every prediction (the temporary's name was too long)."""
    import os
    import stat

    from fmkit.cli.main import main

    src = tmp_path / "same.txt"
    src.write_text("good film\nbad film\n")
    assert main(["predict", export, str(src), "-o", str(src)]) == 2
    assert "is the input file" in capsys.readouterr().err and src.read_text() == "good film\nbad film\n"
    os.chdir(tmp_path)
    assert main(["predict", export, str(src), "-o", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 and not (tmp_path / "-").exists()
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    (tmp_path / "link.jsonl").symlink_to(target)
    assert main(["predict", export, str(src), "-o", str(tmp_path / "link.jsonl")]) == 0
    assert (tmp_path / "link.jsonl").is_symlink() and len(_read(target)) == 2  # the file behind the link
    (tmp_path / "null").symlink_to(os.devnull)
    assert main(["predict", export, str(src), "-o", str(tmp_path / "null")]) == 0
    assert (tmp_path / "null").is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    long_name = tmp_path / ("n" * 245 + ".jsonl")
    assert main(["predict", export, str(src), "-o", str(long_name)]) == 0 and len(_read(long_name)) == 2
    capsys.readouterr()
    assert main(["predict", export, str(src), "-o", str(tmp_path / ("n" * 300 + ".jsonl"))]) == 2
    assert "at most 255 bytes" in capsys.readouterr().err


def test_carriage_returns_duplicate_headers_and_json_named_csv(export, tmp_path):
    """A lone \\r inside a line is part of its text (a file read it as a line end, standard input
    did not); a CSV header naming a column twice, or a .csv holding JSON Lines, is refused naming
    the file (they predicted one column silently, or nothing), for uploads too."""
    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import DataError
    from fmkit.records import read_records

    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes(b"one\rtwo\nthree\r\n")
    assert predict_file(export, str(mixed), str(tmp_path / "o.jsonl")) == 2
    assert [r["input"] for r in _read(tmp_path / "o.jsonl")] == ["one\rtwo", "three"]
    with pytest.raises(DataError, match=r"d.csv:1: the header names 'text' more than once"):
        read_records("text,text\nx,y\n", "d.csv")
    with pytest.raises(DataError, match=r"j.csv: its first line is JSON"):
        read_records('{"text": "hi"}\n', "j.csv")
    with pytest.raises(DataError, match=r"c.csv:2: .*carriage return"):
        read_records("text\na\rb\n", "c.csv")


def test_a_model_trained_on_a_named_column_reads_that_column_of_a_prediction_file(tmp_path, caplog):
    """A model trained with data.text_column: message predicts a CSV of id,message rows by its
    messages (it read the first column, the ids, before), from the run and from its export; a file
    without that column is read by its first column, with a warning naming both."""
    import csv
    import logging

    import yaml
    from conftest import tiny_recipe

    import fmkit
    from fmkit.engine.predict_file import predict_file

    recipe = tiny_recipe(tmp_path, epochs=1)
    for split in ("train", "test"):
        path = recipe["data"][split]
        rows = list(csv.DictReader(open(path)))
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "message", "label"])
            w.writerows([i, r["text"], r["label"]] for i, r in enumerate(rows))
    recipe["data"]["text_column"] = "message"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = fmkit.train(str(tmp_path / "r.yaml"))
    src = tmp_path / "new.csv"
    src.write_text("id,message\n7,good film\n8,awful boring film\n")
    for model in (str(run.run_dir), str(fmkit.export(str(run.run_dir), "safetensors"))):
        assert predict_file(model, str(src), str(tmp_path / "o.jsonl")) == 2
        assert [r["input"] for r in _read(tmp_path / "o.jsonl")] == ["good film", "awful boring film"]
    other = tmp_path / "other.csv"
    other.write_text("id,body\n7,good film\n8,awful boring film\n")
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        assert predict_file(str(run.run_dir), str(other), str(tmp_path / "p.jsonl")) == 2
    assert [r["input"] for r in _read(tmp_path / "p.jsonl")] == ["7", "8"]  # as documented, and said:
    assert "have none of 'message', 'text', 'input': their first column 'id' is read" in caplog.text, caplog.text
    assert caplog.text.count("their first column") == 1  # once per layout, not per row


def test_blank_inputs_are_predicted_with_a_warning_naming_them(export, tmp_path, caplog):
    """An empty CSV cell, an empty JSONL text and a 0-byte file in a folder are predicted (one answer
    per input, as asked) but named in a warning: their answer is the model's bias, not a reading."""
    import logging

    from fmkit.engine.predict_file import predict_file

    src = tmp_path / "gaps.csv"
    src.write_text('text,label\ngood film,x\n"",x\n"   ",x\nbad film,x\n')
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        assert predict_file(export, str(src), str(tmp_path / "o.jsonl")) == 4
    assert "2 of 4 inputs are blank" in caplog.text and f"{src}:3" in caplog.text and f"{src}:4" in caplog.text
    assert f"{src}:2" not in caplog.text
    caplog.clear()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("good film")
    (folder / "empty.txt").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        assert predict_file(export, str(folder), str(tmp_path / "f.jsonl")) == 2
    assert "1 of 2 inputs are blank" in caplog.text and "empty.txt" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        assert predict_file(export, str(tmp_path / "o.jsonl"), str(tmp_path / "g.jsonl"), input_format="lines") == 4
    assert "inputs are blank" not in caplog.text  # nothing blank: no warning


def test_a_pair_for_a_single_text_model_is_refused_by_file_and_line(export, tmp_path):
    """Its second text was dropped unread (the tiny model was trained on single texts)."""
    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import DataError

    src = tmp_path / "pairs.jsonl"
    src.write_text('{"text": "good film"}\n{"text": "good film", "text_pair": "bad film"}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:2: this model was trained on single texts"):
        predict_file(export, str(src), str(tmp_path / "o.jsonl"))
    assert not (tmp_path / "o.jsonl").exists()
