"""The Open Inference Protocol (KServe v2 REST), so existing clients (tritonclient, KServe's own
SDK, Seldon MLServer clients) can call an fmkit server unchanged.

Endpoints: ``GET /v2`` (server metadata), ``GET /v2/health/live`` and ``/v2/health/ready``,
``GET /v2/models/{name}`` (model metadata), ``GET /v2/models/{name}/ready``, and
``POST /v2/models/{name}[/versions/{version}]/infer``. A request's first input tensor holds the
batch: ``BYTES`` elements are raw inputs as ``/v1/predict`` takes them (texts, base64 images or
audio); numeric tensors are split along their first dimension (one series per row). Each field of
the predictions becomes an output tensor: strings as ``BYTES``, numbers as ``FP64``, equal-length
number lists and per-label score mappings (in the model's label order) as ``[batch, n]`` tensors;
fields that are none of these (entity lists, say) are left to ``/v1/predict``. Errors answer
``{"error": message}`` with the same status codes as ``/v1``.
"""
from __future__ import annotations

import math
from typing import Any, Awaitable, Callable

try:  # module level: FastAPI resolves the endpoints' (string) annotations from these globals
    from fastapi import Request
except ImportError:  # serving is optional: fmkit[serve]
    Request = None  # type: ignore[assignment,misc]

#: the protocol's health paths: public like /v1/health (probes carry no key)
HEALTH_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


class ProtocolError(ValueError):
    """A request the protocol cannot take: answered with ``status`` and ``{"error": ...}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _reshape(flat: list, shape: list[int]) -> list:
    """The row-major nested list of ``shape`` holding ``flat``."""
    if len(shape) <= 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flatten(data: Any) -> list:
    """The elements of ``data`` in row-major order, however deeply it nests (no recursion: a hostile
    body may nest a thousand levels)."""
    out, stack = [], [iter([data])]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _is_number(x: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(x, bool)
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def wanted_outputs(body: dict) -> list[str] | None:
    """The output names a request asks for (``"outputs": [{"name": ...}, ...]``), ``None`` for all."""
    outputs = body.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise ProtocolError('outputs must be a list of {"name": "..."} with string names', 422)
    return [o["name"] for o in outputs] or None


#: the most dimensions an input tensor may have (a thousand overflowed the reshape's recursion)
MAX_DIMS = 16


def _check_shape(shape: Any, max_items: int | None, max_values: int | None = None) -> None:
    """Refuse a shape that is not a short list of sizes, whose batch is past ``max_items``, or whose
    sizes multiply past ``max_values`` (a zero among them counted as one: ``[64, 1000000, 0]`` holds
    no data, yet its rows would be built), before any element is looked at."""
    if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                      for d in shape)):
        raise ProtocolError(f"inputs[0].shape must be a list of sizes (whole numbers); got {shape!r:.80}", 422)
    if len(shape) > MAX_DIMS:
        raise ProtocolError(f"inputs[0].shape has {len(shape)} dimensions; the limit is {MAX_DIMS}", 422)
    if max_items is not None and shape[0] > max_items:
        raise ProtocolError(f"{shape[0]} inputs in one request; the limit is {max_items} (--max-items)", 413)
    if max_values is not None and math.prod(max(d, 1) for d in shape) > max_values:
        raise ProtocolError(f"inputs[0].shape {shape} spans more than {max_values} values, the most one request "
                            "may hold (--max-request-chars)", 413)


def request_items(body: Any, max_items: int | None = None, max_values: int | None = None) -> list[Any]:
    """The raw inputs of an inference request (its one input tensor, split along the batch); a
    batch past ``max_items``, or a shape spanning more than ``max_values``, is refused (413) from
    the shape, before its data is read."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ProtocolError('the body must be {"inputs": [{"name", "shape", "datatype", "data"}, ...]}', 422)
    if len(body["inputs"]) > 1:  # the others would be ignored: said, not dropped
        raise ProtocolError(f"this model takes one input tensor; the request has {len(body['inputs'])}")
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict) or not {"shape", "datatype", "data"} <= set(tensor):
        raise ProtocolError("inputs[0] needs name, shape, datatype and data", 422)
    shape, datatype = tensor["shape"], str(tensor["datatype"]).upper()
    _check_shape(shape, max_items, max_values)
    flat = _flatten(tensor["data"])
    if len(flat) != math.prod(shape):
        raise ProtocolError(f"inputs[0] has {len(flat)} elements but its shape {shape} holds {math.prod(shape)}")
    if datatype == "BYTES":
        if len(shape) != 1:
            raise ProtocolError(f"a BYTES input is a list of raw inputs, shape [batch]; got {shape}")
        return flat
    if datatype not in NUMERIC:
        raise ProtocolError(f"inputs[0].datatype {datatype!r} is not a datatype of the protocol")
    bad = next((i for i, x in enumerate(flat) if not _is_number(x, datatype)), None)
    if bad is not None:
        raise ProtocolError(f"inputs[0] is {datatype} but its element {bad} is {flat[bad]!r:.60}")
    return _reshape(flat, shape) if len(shape) > 1 else flat


def _binary_data(chunk: bytes, datatype: str, i: int, max_items: int | None = None,
                 max_values: int | None = None) -> list:
    """The elements of input ``i``'s raw bytes (BYTES: each a 4-byte little-endian length, then
    that many bytes of UTF-8; numeric: the datatype's little-endian values). Past ``max_items``
    BYTES elements, or ``max_values`` numbers, it stops with a 413 before decoding the rest."""
    import numpy as np

    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(chunk):
            if max_items is not None and len(items) >= max_items:
                raise ProtocolError(f"inputs[{i}] holds more than {max_items} inputs, the most one request may have "
                                    "(--max-items)", 413)
            if pos + 4 > len(chunk):
                raise ProtocolError(f"inputs[{i}]: {len(chunk) - pos} stray byte(s) at the end of its BYTES data")
            length = int.from_bytes(chunk[pos:pos + 4], "little")
            if pos + 4 + length > len(chunk):
                raise ProtocolError(f"inputs[{i}]: element {len(items)} says {length} bytes but "
                                    f"{len(chunk) - pos - 4} remain in its BYTES data")
            try:
                items.append(chunk[pos + 4:pos + 4 + length].decode("utf-8"))
            except UnicodeDecodeError as e:
                raise ProtocolError(f"inputs[{i}]: element {len(items)} is not UTF-8 ({e.reason} at byte {e.start})") \
                    from None
            pos += 4 + length
        return items
    if datatype not in _DTYPES:
        raise ProtocolError(f"inputs[{i}].datatype {datatype!r} is not a datatype of the protocol")
    width = np.dtype(_DTYPES[datatype]).itemsize
    if len(chunk) % width:
        raise ProtocolError(f"inputs[{i}]: {len(chunk)} bytes of {datatype} data is not a whole number of "
                            f"{width}-byte values")
    if max_values is not None and len(chunk) // width > max_values:
        raise ProtocolError(f"inputs[{i}] holds {len(chunk) // width} values; the most one request may hold is "
                            f"{max_values} (--max-request-chars)", 413)
    return np.frombuffer(chunk, dtype=_DTYPES[datatype]).tolist()


_DTYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "<i1",
           "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def parse_body(raw: bytes, header_length: str | None, max_items: int | None = None,
               max_values: int | None = None) -> Any:
    """The request as JSON; with the binary tensor extension (``Inference-Header-Content-Length``,
    what tritonclient sends by default) the JSON header is followed by each input's raw bytes,
    which become its ``data`` (see :func:`_binary_data`, which the limits bound)."""
    from .json_bodies import loads

    if header_length is None:
        return loads(raw)
    if header_length.startswith("-") and header_length[1:].isdigit():
        raise ProtocolError(f"Inference-Header-Content-Length {header_length} is negative: give the JSON header's "
                            "size in bytes", 422)
    if not (header_length.isascii() and header_length.isdigit()):
        raise ProtocolError("Inference-Header-Content-Length must be a number of bytes (digits only)", 422)
    n = int(header_length)
    if n > len(raw):
        raise ProtocolError(f"Inference-Header-Content-Length {n} is past the body's {len(raw)} bytes", 422)
    body, offset = loads(raw[:n]), n
    if not isinstance(body, dict) or not isinstance(body.get("inputs", []), list):
        raise ProtocolError('the JSON header must be {"inputs": [{"name", "shape", "datatype", ...}, ...]}', 422)
    for i, tensor in enumerate(body.get("inputs") or []):
        if not isinstance(tensor, dict):
            continue  # request_items names what is wrong with it
        parameters = tensor.get("parameters")
        if parameters is None:
            continue
        if not isinstance(parameters, dict):
            raise ProtocolError(f"inputs[{i}].parameters must be an object; got {parameters!r:.60}", 422)
        size = parameters.get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"inputs[{i}].parameters.binary_data_size must be a whole number of bytes; "
                                f"got {size!r:.60}", 422)
        chunk, offset = raw[offset:offset + size], offset + size
        if len(chunk) != size:
            raise ProtocolError(f"inputs[{i}]: binary_data_size {size} is past the end of the body")
        tensor["data"] = _binary_data(chunk, str(tensor.get("datatype", "")).upper(), i, max_items, max_values)
    if offset < len(raw):
        raise ProtocolError(f"{len(raw) - offset} byte(s) after the last input's binary data: the inputs' "
                            "binary_data_size values do not add up to the body")
    return body


def _tensor(name: str, values: list, labels: list[str] | None) -> dict | None:
    """One output tensor from one field's values across the batch, or None if it is no tensor."""
    n = len(values)
    if all(isinstance(v, str) for v in values):
        return {"name": name, "datatype": "BYTES", "shape": [n], "data": values}
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"name": name, "datatype": "FP64", "shape": [n], "data": [float(v) for v in values]}
    if all(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in values) \
            and len({len(v) for v in values}) == 1:
        width = len(values[0]) if values else 0
        return {"name": name, "datatype": "FP64", "shape": [n, width], "data": [float(x) for v in values for x in v]}
    if labels and all(isinstance(v, dict) and set(v) <= set(labels) for v in values):
        return {"name": name, "datatype": "FP64", "shape": [n, len(labels)],
                "data": [float(v.get(label, 0.0)) for v in values for label in labels]}
    return None


def response_outputs(predictions: list[Any], labels: list[str] | None, wanted: list[str] | None) -> list[dict]:
    """Output tensors of ``predictions`` (dicts, or plain values as output ``prediction``)."""
    rows = [p if isinstance(p, dict) else {"prediction": p} for p in predictions]
    names = list(dict.fromkeys(k for r in rows for k in r))
    tensors = [t for t in (_tensor(n, [r.get(n) for r in rows], labels) for n in names) if t is not None]
    missing = [w for w in (wanted or []) if w not in {t["name"] for t in tensors}]
    if missing:
        raise ProtocolError(f"no output named {missing}; this model answers {[t['name'] for t in tensors]}")
    return [t for t in tensors if wanted is None or t["name"] in wanted]


def request_id(body: Any) -> str | None:
    """The request's ``id``, echoed in the answer: a string of valid Unicode (a lone surrogate could
    not be written back), or absent."""
    from .limits import bad_unicode

    found = body.get("id") if isinstance(body, dict) else None
    if found is None:
        return None
    if not isinstance(found, str):
        raise ProtocolError(f"id must be a string; got {type(found).__name__}", 422)
    bad = bad_unicode(found)
    if bad:
        raise ProtocolError(f"id is not valid Unicode: {bad}")
    return found


def add_routes(app, name: str, version: str, task, meta: dict, predict: Callable[[list, str, Any], Awaitable[Any]],
               max_items: int | None = None, max_values: int | None = None):
    """Add the protocol's endpoints to ``app``; ``predict(items, what, request)`` answers raw inputs
    (the /v1 path: same limits, batching and metrics) and returns a list or a Response;
    ``max_items`` and ``max_values`` are checked against a tensor's shape and binary size before
    its data is read. A body is parsed on a worker thread, never on the event loop."""
    from fastapi import HTTPException
    from fastapi.responses import JSONResponse, Response

    from .. import __version__

    example = ((meta.get("signature") or {}).get("example_inputs") or [None])[0]
    input_type = "BYTES" if example is None or isinstance(example, str) else "FP32"

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def check_model(model: str, model_version: str | None = None) -> JSONResponse | None:
        if model != name:
            return error(404, f"no model named {model!r}; this server serves {name!r}")
        if model_version is not None and model_version != version:
            return error(404, f"model {name!r} has no version {model_version!r}; it has {version!r}")
        return None

    @app.get("/v2", tags=["open inference protocol"])
    async def server_metadata():
        return {"name": "fmkit", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["open inference protocol"])
    @app.head("/v2/health/live", include_in_schema=False)  # probes that only want the status
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["open inference protocol"])
    @app.head("/v2/health/ready", include_in_schema=False)
    async def ready():
        return {"ready": True}

    @app.get("/v2/models/{model}", tags=["open inference protocol"])
    async def model_metadata(model: str):
        wrong = check_model(model)
        if wrong:
            return wrong
        return {"name": name, "versions": [version], "platform": "fmkit",
                "inputs": [{"name": "input", "datatype": input_type, "shape": [-1]}],
                "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]}] if task.labels else []}

    @app.get("/v2/models/{model}/ready", tags=["open inference protocol"])
    async def model_ready(model: str):
        return check_model(model) or {"name": name, "ready": True}

    async def infer(request: Request, model: str, model_version: str | None = None):
        wrong = check_model(model, model_version)
        if wrong:
            return wrong
        from starlette.concurrency import run_in_threadpool

        raw = await request.body()
        try:
            body = await run_in_threadpool(parse_body, raw, request.headers.get("inference-header-content-length"),
                                           max_items, max_values)
        except ProtocolError as e:
            return error(e.status, str(e))
        except ValueError as e:  # json.JSONDecodeError
            return error(422, f"the body is not JSON: {e}")
        try:
            items = await run_in_threadpool(request_items, body, max_items, max_values)
            wanted = wanted_outputs(body)
            asked_id = request_id(body)
            answer = await predict(items, "inputs", request)
            if isinstance(answer, Response):
                return answer
            outputs = response_outputs(answer, task.labels, wanted)
        except ProtocolError as e:
            return error(e.status, str(e))
        except HTTPException as e:
            return error(e.status_code, str(e.detail))
        reply = {"model_name": name, "model_version": version, "outputs": outputs}
        if asked_id is not None:
            reply["id"] = asked_id
        return JSONResponse(reply)

    @app.post("/v2/models/{model}/infer", tags=["open inference protocol"])
    async def infer_latest(request: Request, model: str):
        """Open Inference Protocol inference: the first input tensor's batch of raw inputs."""
        return await infer(request, model)

    @app.post("/v2/models/{model}/versions/{model_version}/infer", tags=["open inference protocol"])
    async def infer_version(request: Request, model: str, model_version: str):
        """Inference on a named version (this server has one)."""
        return await infer(request, model, model_version)
