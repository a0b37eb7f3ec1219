"""fmkit's plugin contract suite, run against fmkit-audio."""
from fmkit.testing import contract_tests

globals().update(contract_tests("audio", export_formats=("onnx", "torchscript")))
