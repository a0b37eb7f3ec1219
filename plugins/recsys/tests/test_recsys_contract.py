"""fmkit's plugin contract suite, run against fmkit-recsys."""
from fmkit.testing import contract_tests

globals().update(contract_tests("recsys", export_formats=("onnx", "torchscript")))
