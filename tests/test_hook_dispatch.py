"""Hook calls go through pluggy: wrappers, tryfirst/trylast, timing, and the plugin that raised."""
from __future__ import annotations

import pytest

from fmkit import hookimpl
from fmkit.errors import PluginHookError
from fmkit.plugins import PluginManager


def _manager(*plugins) -> PluginManager:
    pm = PluginManager(autoload=False)
    for name, obj in plugins:
        assert pm.register(obj, name=name), pm.infos[name].error
    return pm


class Recorder:
    def __init__(self, calls: list, tag: str):
        self.calls, self.tag = calls, tag


class Plain(Recorder):
    @hookimpl
    def fmkit_on_epoch_start(self, epoch):
        self.calls.append(f"{self.tag}:{epoch}")


class First(Recorder):
    @hookimpl(tryfirst=True)
    def fmkit_on_epoch_start(self, epoch):
        self.calls.append(self.tag)


class Last(Recorder):
    @hookimpl(trylast=True)
    def fmkit_on_epoch_start(self):
        self.calls.append(self.tag)


class Wrapper(Recorder):
    @hookimpl(wrapper=True)
    def fmkit_on_epoch_start(self, epoch):
        self.calls.append(f"{self.tag}:before")
        try:
            return (yield)
        finally:
            self.calls.append(f"{self.tag}:after")


class OldWrapper(Recorder):
    @hookimpl(hookwrapper=True, tryfirst=True)
    def fmkit_on_epoch_start(self):
        self.calls.append(f"{self.tag}:before")
        outcome = yield
        self.calls.append(f"{self.tag}:after:{'raised' if outcome.exception else 'ok'}")


class Broken(Recorder):
    @hookimpl
    def fmkit_on_epoch_start(self, epoch):
        self.calls.append(self.tag)
        raise ValueError(f"bad epoch {epoch}")


def test_wrappers_and_tryfirst_trylast_run_in_pluggys_documented_order():
    calls: list[str] = []
    # registered in an order that differs from the call order pluggy documents
    pm = _manager(("last", Last(calls, "last")), ("plain", Plain(calls, "plain")), ("wrap", Wrapper(calls, "wrap")),
                  ("first", First(calls, "first")), ("old", OldWrapper(calls, "old")))
    pm.dispatch("fmkit_on_epoch_start", run=None, epoch=3)
    # wrappers around everything (the tryfirst one outermost); then tryfirst, plain, trylast
    assert calls == ["old:before", "wrap:before", "first", "plain:3", "last", "wrap:after", "old:after:ok"]
    assert pm.hook_timings["fmkit_on_epoch_start"] > 0


def test_an_exception_names_the_plugin_that_raised_and_wrappers_see_it():
    calls: list[str] = []
    pm = _manager(("plain", Plain(calls, "plain")), ("broken", Broken(calls, "broken")),
                  ("old", OldWrapper(calls, "old")))
    with pytest.raises(PluginHookError) as info:
        pm.dispatch("fmkit_on_epoch_start", run=None, epoch=7)
    assert info.value.plugin == "broken" and info.value.hook == "fmkit_on_epoch_start"
    assert "plugin 'broken' raised in hook fmkit_on_epoch_start: ValueError: bad epoch 7" in str(info.value)
    assert calls[-1] == "old:after:raised"  # the wrapper observed the failure, as pluggy documents


class State:
    def __init__(self, value):
        self.value, self.restored = value, None

    @hookimpl
    def fmkit_checkpoint_state(self, run):
        return {"value": self.value}

    @hookimpl
    def fmkit_restore_checkpoint_state(self, state):
        self.restored = state


def test_checkpoint_state_is_kept_and_restored_per_plugin():
    a, b = State(1), State(2)
    pm = _manager(("a", a), ("b", b))
    states = pm.collect("fmkit_checkpoint_state", run=None)
    assert states == {"a": {"value": 1}, "b": {"value": 2}}
    pm.call_one("b", "fmkit_restore_checkpoint_state", run=None, state=states["b"])
    assert b.restored == {"value": 2} and a.restored is None
