"""Plugins add Python functions to the fmkit namespace (fmkit_register_workflows, API 1.5):
``fmkit.NAME`` resolves to them on first use; the core's names, another plugin's names and bad
import strings are skipped with a warning; a hook that raises marks its plugin failed."""
from __future__ import annotations

import logging

import pytest

import fmkit


def greet(name: str) -> str:
    """The function a test plugin adds as fmkit.greet."""
    return f"hello {name}"


class Greeter:
    @fmkit.hookimpl
    def fmkit_register_workflows(self):
        return {"greet": "test_workflows:greet", "train": "test_workflows:greet", "broken": "not an import string"}


class Copycat:
    @fmkit.hookimpl
    def fmkit_register_workflows(self):
        return {"greet": "test_workflows:greet"}


class Raiser:
    @fmkit.hookimpl
    def fmkit_register_workflows(self):
        raise RuntimeError("workflow registry exploded")


def test_a_plugin_function_is_reachable_as_fmkit_name_and_the_core_keeps_its_own(caplog):
    fmkit.register_plugin(Greeter(), name="greeter")  # removed after the test (conftest)
    with caplog.at_level(logging.WARNING, logger="fmkit.plugins"):
        assert fmkit.greet("ada") == "hello ada"
        assert fmkit.train is not greet and fmkit.train.__module__ == "fmkit"
        with pytest.raises(AttributeError, match="no installed plugin adds a workflow"):
            fmkit.broken  # noqa: B018
    text = caplog.text
    assert "workflow 'train' is one of fmkit's own names" in text
    assert "workflow 'broken' must be an import string" in text
    assert "greet" not in dir(fmkit)  # dir lists the core's public API only


def test_a_second_plugin_cannot_take_a_name_and_a_raising_hook_fails_only_its_plugin(caplog):
    fmkit.register_plugin(Greeter(), name="greeter")
    fmkit.register_plugin(Copycat(), name="copycat")
    fmkit.register_plugin(Raiser(), name="raiser")
    manager = fmkit.get_plugin_manager()
    with caplog.at_level(logging.WARNING, logger="fmkit.plugins"):
        found = manager.workflows(set(fmkit.__all__))
    owners = {name: plugin for name, (plugin, _) in found.items()}
    assert owners.get("greet") in {"greeter", "copycat"} and list(owners).count("greet") == 1
    other = ({"greeter", "copycat"} - {owners["greet"]}).pop()
    assert f"plugin {other!r}: workflow 'greet' is already added by plugin {owners['greet']!r}" in caplog.text
    assert manager.infos["raiser"].status == "failed" and "exploded" in manager.infos["raiser"].error
    assert fmkit.greet("x") == "hello x"  # the others still work


def test_submodules_and_private_names_never_ask_the_plugins(monkeypatch):
    import fmkit.workflows as wf

    def boom(name):
        raise AssertionError(f"plugins were asked for {name!r}")

    monkeypatch.setattr(wf, "workflow", boom)
    with pytest.raises(AttributeError):
        fmkit._private  # noqa: B018
    with pytest.raises(AttributeError):
        fmkit.__getattr__("errors")  # a submodule's name: imported by Python, not looked up in plugins
    from fmkit import errors  # noqa: F401
