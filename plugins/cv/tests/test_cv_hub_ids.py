"""timm's Hugging Face hub names (``hf-hub:ORG/NAME`` architectures, ``timm-cache`` weights of a tagged
architecture) load from the local cache, never from the network, and a name missing from the cache
is an error naming the repository and the fix.

huggingface_hub reads HF_HUB_CACHE, HF_HUB_OFFLINE and HF_ENDPOINT when it is imported, so the cases run
in a fresh interpreter started with HF_HUB_OFFLINE=1 and HF_ENDPOINT at a local server that counts requests;
then the same interpreter runs them again as if HF_HUB_OFFLINE were unset (the value huggingface_hub read
from it, ``constants.HF_HUB_OFFLINE``, set to False; nothing else reads the variable), and the server
must have seen no request at all.
"""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

pytest.importorskip("huggingface_hub")
pytest.importorskip("timm")

SHA = "0123456789abcdef0123456789abcdef01234567"

#: each case loads a model (or fails) and prints one JSON line: the tensors that equal the saved ones, or the error
CASES = r"""
import json, sys
from huggingface_hub import constants
from safetensors.torch import load_file
from fmkit_cv.models import TimmModelParams, timm_classifier
from fmkit_cv.tasks import ImageClassificationParams, resolve_data_config

saved = {"acme": load_file(sys.argv[1]), "timm": load_file(sys.argv[2])}

def case(name, source, labels, **params):
    name = ("offline " if constants.HF_HUB_OFFLINE else "online ") + name
    try:
        model = timm_classifier(TimmModelParams(**params), {"labels": labels})
    except Exception as e:
        print(json.dumps({"case": name, "error": type(e).__name__, "message": str(e)}))
        return
    state = model.net.state_dict()
    same = sorted(k for k, v in saved[source].items() if k in state and state[k].shape == v.shape
                  and bool((state[k] == v).all()))
    print(json.dumps({"case": name, "same": same, "all": sorted(saved[source]),
                      "fc": list(state["fc.weight"].shape)}))

def cases():
  case("hub-weights", "acme", ["a", "b"], architecture="hf-hub:acme/tiny-resnet", pretrained="timm-cache")
  case("tag-weights", "timm", ["a", "b", "c"], architecture="test_resnet.r160_in1k", pretrained="timm-cache")
  case("hub-architecture-only", "acme", ["a", "b"], architecture="hf-hub:acme/tiny-resnet")
  case("hub-missing", "acme", ["a", "b"], architecture="hf-hub:acme/missing-net", pretrained="timm-cache")
  case("tag-missing", "timm", ["a", "b"], architecture="resnet18", pretrained="timm-cache")
  case("hub-architecture-missing", "acme", ["a", "b"], architecture="hf-hub:acme/missing-net")
  cfg = resolve_data_config(ImageClassificationParams(), {"architecture": "hf-hub:acme/tiny-resnet"})
  print(json.dumps({"case": ("offline " if constants.HF_HUB_OFFLINE else "online ") + "data-config",
                    "mean": cfg["mean"], "input_size": cfg["input_size"]}))

assert constants.HF_HUB_OFFLINE  # the environment's HF_HUB_OFFLINE=1
cases()
constants.HF_HUB_OFFLINE = False  # what HF_HUB_OFFLINE unset gives
cases()
assert not constants.HF_HUB_OFFLINE  # fmkit-cv put it back after each call
"""


def _repo(cache, org: str, name: str, config: dict, seed: int):
    """A repository in the layout a download leaves: refs/main names the snapshot holding the files."""
    import timm
    import torch
    from safetensors.torch import save_file

    repo = cache / f"models--{org}--{name}"
    snapshot = repo / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    (snapshot / "config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in timm.create_model("test_resnet", num_classes=2).state_dict().items()}
    save_file(state, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A Hugging Face cache with a hf-hub: repository and the repository of a timm tag."""
    root = tmp_path_factory.mktemp("hf")
    config = {"architecture": "test_resnet", "num_classes": 2, "num_features": 96,
              "pretrained_cfg": {"input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                                 "crop_pct": 1.0, "interpolation": "bilinear", "classifier": "fc"}}
    acme = _repo(root / "hub", "acme", "tiny-resnet", config, seed=1)
    timm_tag = _repo(root / "hub", "timm", "test_resnet.r160_in1k", config, seed=2)
    return root, acme, timm_tag


class _CountingHub(http.server.BaseHTTPRequestHandler):
    """A stand-in for the hub at HF_ENDPOINT: answers 404 to everything and records each request."""

    seen: list[str] = []

    def _answer(self):
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def run(hub):
    """Every case, offline then online, in one fresh interpreter; the requests the hub received."""
    root, acme, timm_tag = hub
    _CountingHub.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update({"HF_HOME": str(root / "home"), "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1",
                "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "HF_HUB_ETAG_TIMEOUT": "2"})
    try:
        r = subprocess.run([sys.executable, "-c", CASES, str(acme), str(timm_tag)], capture_output=True,
                           text=True, env=env, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            out[record["case"]] = record
    assert r.returncode == 0 and len(out) == 14, r.stdout + r.stderr
    return out, list(_CountingHub.seen)


def _check(out: dict, mode: str, cache) -> None:
    out = {k.split(" ", 1)[1]: v for k, v in out.items() if k.startswith(mode + " ")}
    hub_w, tag_w = out["hub-weights"], out["tag-weights"]
    assert hub_w.get("same") == hub_w.get("all"), hub_w  # every tensor, head included (same classes)
    backbone = [k for k in tag_w.get("all", []) if not k.startswith("fc.")]
    assert set(backbone) <= set(tag_w.get("same", [])) and "fc.weight" not in tag_w["same"], tag_w
    assert tag_w["fc"] == [3, 96], tag_w  # a new head for three classes
    assert out["hub-architecture-only"].get("fc") == [2, 96], out["hub-architecture-only"]
    assert out["data-config"]["mean"] == [0.5, 0.5, 0.5] and out["data-config"]["input_size"] == 64
    for name, repo, fix in (("hub-missing", "acme/missing-net", "set model.architecture"),
                            ("tag-missing", "timm/resnet18.a1_in1k", "set model.pretrained to a local weights"),
                            ("hub-architecture-missing", "acme/missing-net", "set model.architecture")):
        record = out[name]
        assert record.get("error") == "UsageError", record
        message = record["message"]
        assert f"repository {repo!r}" in message and f"not in the local cache ({cache}), or not completely" in message
        assert f"`hf download {repo}`" in message and fix in message, message
        assert "never downloads" in message


def test_hub_names_load_from_the_cache_with_hf_hub_offline_and_a_missing_one_names_the_fix(hub, run):
    _check(run[0], "offline", hub[0] / "hub")


def test_without_hf_hub_offline_the_cache_answers_and_nothing_is_requested_from_the_hub(hub, run):
    _check(run[0], "online", hub[0] / "hub")
    assert run[1] == [], run[1]
