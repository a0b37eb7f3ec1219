"""`import fmkit` shows its public API and nothing else; every public name resolves."""
from __future__ import annotations


def test_dir_is_the_public_api():
    import fmkit

    assert dir(fmkit) == sorted(fmkit.__all__)
    assert "Any" not in dir(fmkit) and "annotations" not in dir(fmkit)
    for name in fmkit.__all__:
        assert getattr(fmkit, name) is not None, name
