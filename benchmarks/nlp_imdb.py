"""IMDB subset (../shared/data/imdb_subset): 2,000 training reviews, 2,000 test reviews, with the
pretrained all-MiniLM-L6-v2 on the first 256 tokens of each review.

Usage: python benchmarks/nlp_imdb.py   Target: test accuracy >= 85%.
"""
from _common import require_shared, run_recipe, verdict

require_shared("imdb_subset")
res, wall, run_dir = run_recipe("examples/recipes/imdb-minilm.yaml")
print(f"IMDB subset test accuracy {res['accuracy']:.4f} ({verdict(res['accuracy'], 0.85)} target 0.85), "
      f"training {res['_train_seconds']:.0f} s, wall {wall:.0f} s, run {run_dir}")
