"""ETTh1, multivariate, horizon 96, standard split and scaling: seasonal naive, DLinear and PatchTST
from one run, test MSE/MAE on the scaled test set (as the papers report) and wall time.

Usage: python benchmarks/timeseries_etth1.py   Target: best model MSE <= 0.40
(published: PatchTST 0.370, DLinear 0.375).
"""
from _common import require_shared, run_recipe, verdict

require_shared("ett/ETTh1.csv")
rows = []
for label, recipe, overrides in [
    ("seasonal naive (24 h)", "examples/recipes/etth1-dlinear.yaml", ["model.name=seasonal-naive", "scheduler=null",
                                                                        "tracking.run_name=etth1-naive"]),
    ("DLinear", "examples/recipes/etth1-dlinear.yaml", []),
    ("PatchTST", "examples/recipes/etth1-patchtst.yaml", []),
]:
    results, seconds, run_dir = run_recipe(recipe, overrides)
    rows.append((label, results["mse"], results["mae"], seconds))
    print(f"{label:24s} test MSE {results['mse']:.4f}  MAE {results['mae']:.4f}  "
          f"(original units MSE {results['mse_original']:.3f})  wall {seconds:.0f} s  run {run_dir}", flush=True)
best = min(rows[1:], key=lambda r: r[1])
print(f"best model: {best[0]} MSE {best[1]:.4f} ({verdict(best[1], 0.40, higher_is_better=False)} target <= 0.40; "
      f"published PatchTST 0.370, DLinear 0.375); seasonal naive MSE {rows[0][1]:.4f} "
      f"({rows[0][1] / best[1]:.2f}x the best)")
