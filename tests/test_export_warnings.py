"""Third-party warnings during an export become one summary line and a list in export.json."""
from __future__ import annotations

import json
import logging
import shutil
import warnings

from helpers.serving import tiny_run


def test_export_warnings_are_summed_up_in_one_line(tmp_path_factory, tmp_path, caplog):
    import fmkit

    run = tmp_path / "run"
    shutil.copytree(tiny_run(tmp_path_factory), run)
    with warnings.catch_warnings(record=True) as leaked, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        out = fmkit.export(str(run), "onnx")
    meta = json.loads((out / "export.json").read_text())
    assert meta["warnings"] and all({"source", "message", "count"} <= set(w) for w in meta["warnings"])
    assert sum(w["count"] for w in meta["warnings"]) >= 1
    lines = [r.getMessage() for r in caplog.records if "warning(s) from other libraries" in r.getMessage()]
    assert len(lines) == 1 and "onnx export" in lines[0]
    assert not leaked, [str(w.message)[:80] for w in leaked]  # none reached the caller
