"""Hub ids resolve as transformers users expect: from the local cache when there, never downloaded
with HF_HUB_OFFLINE, and an error that names the fix when neither the cache nor the hub has it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("huggingface_hub")

RESOLVE = ("from fmkit_nlp.models import resolve_pretrained\n"
           "try:\n    print('PATH', resolve_pretrained('acme/tiny-bert'))\n"
           "except Exception as e:\n    print('ERROR', type(e).__name__, e)\n")


def _resolve(env: dict) -> str:
    full = {**os.environ, **env}
    r = subprocess.run([sys.executable, "-c", RESOLVE], capture_output=True, text=True, env=full, timeout=120)
    return r.stdout + r.stderr


def _cached_model(cache) -> str:
    """A model in the Hugging Face cache layout (what a download leaves): refs/main names a snapshot."""
    from transformers import BertConfig

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--acme--tiny-bert"
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(snapshot)
    return str(snapshot)


def test_a_cached_hub_id_comes_from_the_cache_even_offline(tmp_path):
    snapshot = _cached_model(tmp_path / "hub")
    out = _resolve({"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert f"PATH {snapshot}" in out, out


def test_offline_and_not_cached_is_an_error_naming_the_fix(tmp_path):
    out = _resolve({"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert "ERROR UsageError" in out and "HF_HUB_OFFLINE is set" in out
    assert "hf download acme/tiny-bert" in out


def test_an_unreachable_hub_is_tried_then_an_error_naming_the_fix(tmp_path):
    out = _resolve({"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "0",
                    "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"})
    assert "ERROR UsageError" in out and "downloading it failed" in out, out
    assert "hf download acme/tiny-bert" in out


def test_a_missing_local_path_is_not_mistaken_for_a_hub_id(tmp_path):
    from fmkit.errors import UsageError
    from fmkit_nlp.models import resolve_pretrained

    with pytest.raises(UsageError, match="no such folder .*relative paths are read from the current folder"):
        resolve_pretrained("./models/mine")
