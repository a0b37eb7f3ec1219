"""fmkit's plugin contract suite, run against fmkit-cv."""
from fmkit.testing import contract_tests

globals().update(contract_tests("cv", export_formats=("onnx", "torchscript")))
