"""fmkit-tune's public signal to other plugins: the study and trial in the environment while a trial trains."""
import os


def test_tune_trial_signal_is_set_during_the_trial_and_restored_after(monkeypatch):
    from fmkit_tune.trial import SIGNAL, _Announced

    monkeypatch.setenv("FMKIT_TUNE_STUDY", "outer")  # an earlier value comes back afterwards
    monkeypatch.delenv("FMKIT_TUNE_STUDY_DIR", raising=False)
    monkeypatch.delenv("FMKIT_TUNE_TRIAL", raising=False)
    with _Announced("sst2", "/runs/tune/sst2", 7):
        assert [os.environ[k] for k in SIGNAL] == ["sst2", "/runs/tune/sst2", "7"]
    assert os.environ["FMKIT_TUNE_STUDY"] == "outer"
    assert "FMKIT_TUNE_STUDY_DIR" not in os.environ and "FMKIT_TUNE_TRIAL" not in os.environ
