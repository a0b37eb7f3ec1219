"""scikit-learn digits (seeded 80/20 split), small timm ResNet from scratch.

Usage: python benchmarks/cv_digits.py       Target: test accuracy >= 97%.
"""
from _common import run_recipe, verdict

results, seconds, run_dir = run_recipe("examples/recipes/digits-resnet.yaml", ["export.formats=[]"])
acc = results["accuracy"]
print(f"digits resnet10t from scratch: test accuracy {acc:.4f} ({verdict(acc, 0.97)} target 0.97), "
      f"wall {seconds:.0f} s, run {run_dir}")
