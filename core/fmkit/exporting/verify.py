"""The checks every export passes before it is renamed into place.

An export is compared with the model it came from on real validation inputs. It fails when:

- the weights it would be written from are not finite (a diverged run: NaN or inf);
- any output, of the reference model or of the export, is not finite (``max(0, NaN)`` is 0, so
  a NaN difference must be caught before it is compared with a tolerance);
- the largest absolute difference exceeds the tolerance (float exports);
- for classification, the share of predictions the export agrees on is below the threshold
  (``export.min_agreement`` for float exports, ``export.int8_min_agreement`` for int8);
- for other tasks' int8 models, the largest difference relative to the largest reference output
  exceeds ``export.int8_max_relative_diff`` (they have no predictions to agree on).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ExportError

_RETRAIN = "the run diverged: retrain with a lower optimizer.lr (or fp32), and check the loss in metrics.jsonl"


def check_finite_weights(model, source: str) -> None:
    """Refuse to export a model whose weights hold NaN or inf (before anything is written)."""
    import torch

    bad, total = [], 0
    for name, t in model.state_dict().items():
        if not torch.is_tensor(t) or not t.is_floating_point():
            continue
        total += 1
        if not bool(torch.isfinite(t).all()):
            bad.append(name)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ExportError(f"the weights of {source} are not finite (NaN or inf in {len(bad)} of {total} tensors: "
                          f"{shown}); {_RETRAIN}. Nothing was exported")


def compare(task, reference_fn: Callable, export_fn: Callable, batches: list[dict]) -> dict[str, Any]:
    """Run both models on ``batches``; the largest difference, non-finite outputs and agreement."""
    import torch

    diff, peak, agree, total = 0.0, 0.0, 0, 0
    non_finite = {"reference": 0, "export": 0}
    for b in batches:
        with torch.inference_mode():
            a, e = reference_fn(b).float(), export_fn(b).float()
        fa, fe = torch.isfinite(a), torch.isfinite(e)
        non_finite["reference"] += int((~fa).sum())
        non_finite["export"] += int((~fe).sum())
        both = fa & fe
        if bool(both.any()):
            diff = max(diff, float((a[both] - e[both]).abs().max()))
            peak = max(peak, float(a[both].abs().max()))
        if task.classification:
            agree += int((a.argmax(-1) == e.argmax(-1)).sum())
            total += a.argmax(-1).numel()
    out: dict[str, Any] = {"max_abs_diff": diff, "max_abs_reference": peak,
                           "examples": sum(len(next(iter(b.values()))) for b in batches)}
    if non_finite["reference"] or non_finite["export"]:
        out["non_finite"] = non_finite
    if total:
        out["prediction_agreement"] = agree / total
    return out


def check(result: dict[str, Any], what: str, tolerance: float | None = None, min_agreement: float | None = None,
          max_relative_diff: float | None = None,
          agreement_setting: str = "--min-agreement or export.min_agreement") -> None:
    """Raise :class:`ExportError` when ``result`` (from :func:`compare`) fails a limit.

    ``what`` names the export in the message (``"onnx export of runs/x"``); every message says
    which recipe field or flag sets the limit."""
    nf = result.get("non_finite")
    if nf:
        if nf["reference"]:
            raise ExportError(f"{what}: the model itself gives {nf['reference']} non-finite outputs (NaN or inf) on the "
                              f"{result['examples']} verification inputs; {_RETRAIN}. Nothing was written")
        raise ExportError(f"{what}: the exported model gives {nf['export']} non-finite outputs (NaN or inf) on the "
                          f"{result['examples']} verification inputs where the model's are finite; nothing was written")
    diff = result["max_abs_diff"]
    if tolerance is not None and not diff <= tolerance:
        raise ExportError(f"{what} differs from the eager model by {diff:.3g} (> tolerance {tolerance:g}; set it with "
                          "--tolerance or export.tolerance); nothing was written")
    agreement = result.get("prediction_agreement")
    if min_agreement is not None and agreement is not None and agreement < min_agreement:
        raise ExportError(f"{what} changes {100 * (1 - agreement):.1f}% of predictions (agreement {agreement:.3f} < "
                          f"{min_agreement:g}, set by {agreement_setting}); nothing was written")
    if max_relative_diff is not None and agreement is None:
        peak = result.get("max_abs_reference", 0.0)
        relative = diff / peak if peak > 0 else (0.0 if diff == 0 else math.inf)
        result["max_relative_diff"] = relative
        if relative > max_relative_diff:
            raise ExportError(f"{what} differs from the float model by {100 * relative:.1f}% of its largest output "
                              f"(> export.int8_max_relative_diff {max_relative_diff:g}); nothing was written")


__all__ = ["check", "check_finite_weights", "compare"]
