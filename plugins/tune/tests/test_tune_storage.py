"""Opening the study storage: several processes opening the same new storage at once (workers
started together, a script reading the study) must all get it, not a duplicate-key error from
creating its tables twice."""
from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy.exc
from fmkit.errors import UsageError

from fmkit_tune import storage


def _race() -> sqlalchemy.exc.IntegrityError:
    return sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception(
        "UNIQUE constraint failed: alembic_version.version_num"))


def test_a_lost_table_creation_race_is_tried_again(tmp_path, monkeypatch):
    real, calls = optuna.storages.RDBStorage, []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise _race()
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert isinstance(storage.open_storage(url), real) and len(calls) == 2


def test_other_storage_errors_fail_at_once_and_a_race_that_never_ends_is_reported(tmp_path, monkeypatch):
    calls = []

    def always(exc):
        def open_(*args, **kwargs):
            calls.append(1)
            raise exc
        return open_

    monkeypatch.setattr(time, "sleep", lambda s: None)
    monkeypatch.setattr(optuna.storages, "RDBStorage", always(sqlalchemy.exc.ArgumentError("bad URL")))
    with pytest.raises(UsageError, match="cannot open the study storage: bad URL"):
        storage.open_storage("sqlite:///x.db")
    assert len(calls) == 1  # a bad URL is not tried again
    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", always(_race()))
    with pytest.raises(UsageError, match="UNIQUE constraint failed"):
        storage.open_storage("sqlite:///x.db", attempts=3)
    assert len(calls) == 3


def test_processes_opening_one_new_storage_at_once_all_get_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    start = time.time() + 8  # every process imports first, then all open the storage at this moment
    code = ("import time, optuna; from fmkit_tune.storage import open_storage; "
            f"time.sleep(max(0.0, {start} - time.time())); "
            f"s = open_storage({url!r}); optuna.create_study(storage=s, study_name='s', load_if_exists=True); "
            "print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-600:] for _, err in outs if err]
    assert len(optuna.get_all_study_summaries(url)) == 1
