"""SST-2 (../shared/data/sst2) with the pretrained all-MiniLM-L6-v2: 8,000 sentences and one epoch,
then (with --full) the whole training set. Accuracy is on test.tsv, the GLUE dev set.

Usage: python benchmarks/nlp_sst2.py [--full | --full-only]
Targets: 8k/1 epoch >= 85% in under 4 minutes of training (a plain PyTorch loop: 84.3% in 223 s);
full training set >= 89%.
"""
import sys

from _common import require_shared, run_recipe, verdict

require_shared("sst2")
if "--full-only" not in sys.argv:
    res, wall, run_dir = run_recipe("examples/recipes/sst2-minilm-8k.yaml")
    print(f"SST-2 8k sentences, 1 epoch: test accuracy {res['accuracy']:.4f} ({verdict(res['accuracy'], 0.85)} "
          f"target 0.85), training {res['_train_seconds']:.0f} s ({verdict(-res['_train_seconds'], -240)} "
          f"target 240 s; plain PyTorch loop: 84.3% in 223 s), wall {wall:.0f} s, run {run_dir}", flush=True)
if "--full" in sys.argv or "--full-only" in sys.argv:
    res, wall, run_dir = run_recipe("examples/recipes/sst2-minilm.yaml")
    print(f"SST-2 full training set: test accuracy {res['accuracy']:.4f} ({verdict(res['accuracy'], 0.89)} "
          f"target 0.89), training {res['_train_seconds']:.0f} s, wall {wall:.0f} s, run {run_dir}", flush=True)
