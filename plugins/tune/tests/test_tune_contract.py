"""fmkit's plugin contract suite, run against fmkit-tune (a recipe section and a command, no components)."""
from fmkit.testing import contract_tests

globals().update(contract_tests("tune"))


def test_tune_is_listed_and_adds_its_command():
    from tune_helpers import ROOT, cli

    r = cli("plugins", "list", cwd=ROOT)
    assert r.returncode == 0 and any(line.split()[:1] == ["tune"] and "loaded" in line
                                     for line in r.stdout.splitlines()), r.stdout
    r = cli("tune", "--help", cwd=ROOT)
    assert r.returncode == 0 and "--workers" in r.stdout and "--storage" in r.stdout


def test_fmkit_tune_is_the_plugin_function():
    """`fmkit.tune(...)` in Python (the issue's API) is fmkit-tune's function, through the core's
    workflow hook; the core itself imports no plugin."""
    import fmkit
    import fmkit_tune

    assert fmkit.tune is fmkit_tune.tune
