"""``GET /``: a small page where a person tries the model: type inputs (one text per line, or JSON
for series and other structured inputs) or upload files (images, audio), and see the predictions
as a table. Plain HTML and JavaScript served by the server itself (works offline), calling the
same ``/v1/predict`` and ``/v1/predict/files`` endpoints as any client, with the API key when the
server has one."""
from __future__ import annotations

import html
import json
from typing import Any

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
textarea{width:100%;min-height:8rem;font:inherit}table{border-collapse:collapse;margin-top:1rem;width:100%}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
.muted{color:#666;font-size:.9rem}#error{color:#b00020;white-space:pre-wrap}button{font:inherit;padding:.3rem 1rem}
</style></head><body>
<h1>__TITLE__</h1>
<p class="muted">__SUMMARY__ &middot; <a href="/docs">API docs</a></p>
<form id="form">
<label for="inputs">__INPUT_LABEL__</label>
<textarea id="inputs" name="inputs">__EXAMPLE__</textarea>
<p><label for="files">or upload files (images, audio, text files): </label><input id="files" type="file" multiple></p>
<p><label for="key">API key (if the server needs one): </label><input id="key" type="password" autocomplete="off"></p>
<button id="predict" type="submit">Predict</button>
</form>
<div id="error" role="alert"></div>
<table id="results" hidden><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table>
<script>
const MODE = __MODE__;
const form = document.getElementById("form");
function cell(value) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    if (entries.every(([, v]) => typeof v === "number"))
      return entries.sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => k + ": " + v.toFixed(3)).join(", ");
    return JSON.stringify(value);
  }
  return typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(4)) : String(value);
}
function show(inputs, predictions) {
  const rows = predictions.map(p => (p !== null && typeof p === "object" && !Array.isArray(p)) ? p : {prediction: p});
  const keys = [...new Set(rows.flatMap(r => Object.keys(r)))];
  const head = document.getElementById("head"), body = document.getElementById("rows");
  head.replaceChildren(...["input", ...keys].map(k => { const th = document.createElement("th"); th.textContent = k; return th; }));
  body.replaceChildren(...rows.map((r, i) => {
    const tr = document.createElement("tr");
    for (const v of [inputs[i], ...keys.map(k => r[k])]) {
      const td = document.createElement("td"); td.textContent = v === undefined ? "" : cell(v); tr.appendChild(td);
    }
    return tr;
  }));
  document.getElementById("results").hidden = false;
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error"); error.textContent = "";
  const headers = {}; const key = document.getElementById("key").value;
  if (key) headers["X-API-Key"] = key;
  const files = document.getElementById("files").files;
  let response, inputs;
  try {
    if (files.length) {
      const data = new FormData(); for (const f of files) data.append("files", f);
      inputs = [...files].map(f => f.name);
      response = await fetch("/v1/predict/files", {method: "POST", body: data, headers});
    } else {
      const text = document.getElementById("inputs").value;
      inputs = MODE === "lines" ? text.split("\\n").filter(t => t.trim()) : JSON.parse(text);
      if (!inputs.length) { error.textContent = "type at least one input, or choose files"; return; }
      headers["Content-Type"] = "application/json";
      response = await fetch("/v1/predict", {method: "POST", body: JSON.stringify({inputs}), headers});
    }
  } catch (e) { error.textContent = "cannot send: " + e.message; return; }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { error.textContent = response.status + ": " + (typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail || answer)); return; }
  show(inputs.map(cell), answer.predictions);
});
</script></body></html>
"""


def render_page(name: str, summary: str, example_inputs: list[Any]) -> str:
    """The page for a model: text inputs one per line when the model takes strings, else JSON."""
    lines = bool(example_inputs) and all(isinstance(x, str) and "\n" not in x for x in example_inputs)
    if lines:
        example, label = "\n".join(example_inputs[:3]), "Inputs, one per line:"
    else:
        example = json.dumps(example_inputs[:1]) if example_inputs else "[]"
        label = "Inputs as a JSON list (one item per input):"
    return (_PAGE.replace("__TITLE__", html.escape(name)).replace("__SUMMARY__", html.escape(summary))
            .replace("__INPUT_LABEL__", label).replace("__EXAMPLE__", html.escape(example))
            .replace("__MODE__", json.dumps("lines" if lines else "json")))
