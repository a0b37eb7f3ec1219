"""fmkit's plugin contract suite, run against fmkit-nlp."""
from fmkit.testing import contract_tests

globals().update(contract_tests("nlp"))
