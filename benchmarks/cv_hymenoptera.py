"""Ants vs bees (../shared/data/hymenoptera_subset): pretrained EfficientNet-Lite0 next to the same
architecture from scratch, in one run.

Usage: python benchmarks/cv_hymenoptera.py   Target: pretrained val accuracy >= 90%.
"""
from _common import require_shared, run_recipe, verdict

require_shared("hymenoptera_subset")
RECIPE = "examples/recipes/hymenoptera-efficientnet.yaml"
pre, t_pre, dir_pre = run_recipe(RECIPE, ["export.formats=[]"])
scratch, t_scratch, _ = run_recipe(RECIPE, ["export.formats=[]", "model.pretrained=null", "tracking.run_name=hymenoptera-scratch"])
print(f"efficientnet_lite0 pretrained (ImageNet, foreign checkpoint): val accuracy {pre['accuracy']:.4f} "
      f"({verdict(pre['accuracy'], 0.90)} target 0.90), wall {t_pre:.0f} s, run {dir_pre}")
print(f"efficientnet_lite0 from scratch:                               val accuracy {scratch['accuracy']:.4f}, "
      f"wall {t_scratch:.0f} s")
print(f"pretrained weights bring {100 * (pre['accuracy'] - scratch['accuracy']):+.1f} points")
