"""fmkit's contract suite, run against the core's own built-in plugin (losses, optimizers,
schedulers, metrics, transforms and exporters)."""
from fmkit.testing import contract_tests

globals().update(contract_tests("fmkit"))
