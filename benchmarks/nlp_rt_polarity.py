"""rt_polarity movie-review sentences (../shared/data/rt_polarity), seeded 8,530/1,066/1,066 split,
with the pretrained all-MiniLM-L6-v2.

Usage: python benchmarks/nlp_rt_polarity.py   Reference: BERT-family models 85-88%, CNN (Kim 2014) 81.5%.
"""
from _common import require_shared, run_recipe

require_shared("rt_polarity")
res, wall, run_dir = run_recipe("examples/recipes/rt-polarity-minilm.yaml")
print(f"rt_polarity test accuracy {res['accuracy']:.4f} (published BERT-family 0.85-0.88), "
      f"training {res['_train_seconds']:.0f} s, wall {wall:.0f} s, run {run_dir}")
