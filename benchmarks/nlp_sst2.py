"""SST-2 (../shared/data/sst2) with the pretrained all-MiniLM-L6-v2: a seeded sample of 8,000 training
sentences and one epoch, then (with --full) the whole training set.

Settings are chosen on validation only: each candidate of a small grid (batch size x pooling) is
trained with validation on 1,000 sentences of dev.tsv (part of GLUE's train split) and *no* test
split; the candidate with the best validation accuracy is then scored once on test.tsv (the GLUE
dev set, 872 sentences). No other candidate ever sees test.tsv.

Usage: python benchmarks/nlp_sst2.py [--full | --full-only] [--no-select]
  --no-select   skip the grid: train the committed recipe as it stands (validation only), then
                score it once on test.tsv
Targets: 8k / 1 epoch >= 85% test accuracy in under 4 minutes of training; full training set >= 89%.
"""
import sys

from _common import ROOT, require_shared, run_recipe, verdict

RECIPE_8K = "examples/recipes/sst2-minilm-8k.yaml"
# the choices that were tried by hand before selection was made on validation only
GRID = {
    "batch 16, [CLS] pooling (recipe)": [],
    "batch 32, [CLS] pooling": ["train.batch_size=32"],
    "batch 16, mean pooling": ["model.pooling=mean"],
    "batch 32, mean pooling": ["train.batch_size=32", "model.pooling=mean"],
}
VALIDATION_ONLY = ["data.test=null", "evaluate.split=validation", "export.formats=[]"]


def score_on_test(run_dir) -> float:
    import fmkit

    return fmkit.evaluate(str(run_dir), data=str(ROOT.parent / "shared/data/sst2/test.tsv"))["accuracy"]


def main() -> None:
    require_shared("sst2")
    if "--full-only" not in sys.argv:
        grid = {"recipe": []} if "--no-select" in sys.argv else GRID
        scored = []
        for name, overrides in grid.items():
            res, wall, run_dir = run_recipe(RECIPE_8K, overrides + VALIDATION_ONLY)
            scored.append((res["accuracy"], name, res["_train_seconds"], run_dir))
            print(f"  candidate {name}: validation accuracy {res['accuracy']:.4f}, training "
                  f"{res['_train_seconds']:.0f} s, run {run_dir}", flush=True)
        val, name, seconds, run_dir = max(scored, key=lambda s: s[0])
        test = score_on_test(run_dir)
        print(f"SST-2 8k sentences, 1 epoch: chosen on validation: {name} (validation {val:.4f}); "
              f"test accuracy {test:.4f} ({verdict(test, 0.85)} target 0.85), training {seconds:.0f} s "
              f"({verdict(-seconds, -240)} target 240 s), run {run_dir}", flush=True)
    if "--full" in sys.argv or "--full-only" in sys.argv:
        res, wall, run_dir = run_recipe("examples/recipes/sst2-minilm.yaml", VALIDATION_ONLY)
        test = score_on_test(run_dir)
        print(f"SST-2 full training set: validation {res['accuracy']:.4f}, test accuracy {test:.4f} "
              f"({verdict(test, 0.89)} target 0.89), training {res['_train_seconds']:.0f} s, run {run_dir}",
              flush=True)


if __name__ == "__main__":
    main()
