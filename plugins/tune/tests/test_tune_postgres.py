"""fmkit-tune on a real PostgreSQL server (the many-machines set-up): the test starts its own server on
127.0.0.1 in a temporary folder with the system's initdb/pg_ctl and runs two worker processes
against it. Skipped, saying why, where the server binaries or the driver are missing."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from tune_helpers import cli, study_recipe

pytest.importorskip("psycopg", reason="pip install 'fmkit-tune[postgres]' (psycopg) for PostgreSQL storage")


def _binary(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="fmkit-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser: PostgreSQL cannot be started")
        shutil.chown(root, "postgres")
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "fmkit", "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
                    f"-h 127.0.0.1 -p {port} -k {root}", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://fmkit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    import optuna
    from optuna.trial import TrialState

    tune = {"sampler": "random", "pruner": "none", "space": {"optimizer.lr": {"float": [1e-3, 2e-2], "log": True}}}
    path = study_recipe(tmp_path, tune, epochs=1)
    r = cli("tune", str(path), "--trials", "3", "--workers", "2", "--storage", postgres_url, "--study", "pg",
            cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    ts = optuna.load_study(study_name="pg", storage=postgres_url).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in ts) >= 3
    assert len({t.user_attrs["pid"] for t in ts}) == 2
    study_dir = tmp_path / "runs" / "tune" / "pg"
    assert not (study_dir / "study.db").exists() and (study_dir / "best.yaml").is_file()
