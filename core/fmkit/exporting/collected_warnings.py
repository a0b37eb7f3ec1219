"""Third-party warnings raised while exporting (tracer, ONNX, quantisation) collected into one
summary line instead of pages of output; the distinct messages are kept for ``export.json``."""
from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from typing import Iterator

log = logging.getLogger("fmkit")


class _Collect(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("fmkit"):
            self.sink.append((record.name or "root", record.getMessage()))


@contextlib.contextmanager
def collected_warnings(what: str, keep: int = 20) -> Iterator[list[dict]]:
    """Collect Python warnings and other libraries' logged warnings inside the block; at the end
    log one line for all of them. Yields a list that receives up to ``keep`` distinct
    ``{"source", "message", "count"}`` entries."""
    found: list[tuple[str, str]] = []
    summary: list[dict] = []
    handler = _Collect(found)
    root = logging.getLogger()
    quiet = [(h, h.level) for h in root.handlers]
    for h, _ in quiet:  # other libraries' warnings go to the summary, not the terminal
        h.setLevel(max(h.level, logging.ERROR))
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield summary
        found.extend((w.category.__name__, str(w.message)) for w in caught)
    finally:
        root.removeHandler(handler)
        for h, level in quiet:
            h.setLevel(level)
    counts = Counter((src, msg.strip().splitlines()[0][:300] if msg.strip() else "") for src, msg in found)
    summary.extend({"source": s, "message": m, "count": n} for (s, m), n in counts.most_common(keep))
    if found:
        kinds = Counter(src for src, _ in found)
        log.warning("%s: %d warning(s) from other libraries (%s), none of them errors; listed in export.json "
                    "under \"warnings\"", what, len(found), ", ".join(f"{k} x{n}" for k, n in kinds.most_common(5)))
