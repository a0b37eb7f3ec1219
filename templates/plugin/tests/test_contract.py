"""fmkit's plugin contract suite, run against this plugin."""
from fmkit.testing import contract_tests

globals().update(contract_tests("fmkit_example"))
