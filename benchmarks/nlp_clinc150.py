"""CLINC150 (../shared/data/clinc150) in-scope intents with the pretrained all-MiniLM-L6-v2.

Usage: python benchmarks/nlp_clinc150.py   Target: in-scope test accuracy >= 93% (BERT ~96%).
"""
from _common import require_shared, run_recipe, verdict

require_shared("clinc150")
res, wall, run_dir = run_recipe("examples/recipes/clinc150-minilm.yaml")
print(f"CLINC150 in-scope test accuracy {res['accuracy']:.4f} ({verdict(res['accuracy'], 0.93)} target 0.93), "
      f"f1_macro {res['f1_macro']:.4f}, training {res['_train_seconds']:.0f} s, wall {wall:.0f} s, run {run_dir}")
