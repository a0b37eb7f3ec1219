"""MNIST (../shared/data/mnist_test, seeded 8,000/2,000 split), small timm ResNet from scratch.

Usage: python benchmarks/cv_mnist.py        Target: test accuracy >= 98%.
"""
from _common import require_shared, run_recipe, verdict

require_shared("mnist_test")
results, seconds, run_dir = run_recipe("examples/recipes/mnist-resnet.yaml")
acc = results["accuracy"]
print(f"mnist resnet10t from scratch: test accuracy {acc:.4f} ({verdict(acc, 0.98)} target 0.98), "
      f"wall {seconds:.0f} s, run {run_dir}")
