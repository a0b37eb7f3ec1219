"""timm models from the local Hugging Face cache, never downloaded during a run.

timm resolves two kinds of names through huggingface_hub: ``hf-hub:ORG/NAME`` architectures (the
repository's ``config.json`` names the architecture, its weights file holds the weights), and the
pretrained tags of its own architectures (``resnet18.a1_in1k`` reads ``timm/resnet18.a1_in1k``).
fmkit-cv reads both only from the local cache (``HF_HOME`` / ``HF_HUB_CACHE``), whether or not
``HF_HUB_OFFLINE`` is set, and says which repository is missing and how to get it when it is not
there. huggingface_hub reads ``HF_HUB_OFFLINE`` once, when it is imported, so setting the variable
during a run changes nothing: :func:`cache_only` switches its ``constants`` for the call instead.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from fmkit.errors import UsageError

#: timm's prefix for an architecture read from a Hugging Face hub repository
HF_HUB_PREFIX = "hf-hub:"


def is_hub_architecture(architecture: str) -> bool:
    """Whether ``architecture`` is a ``hf-hub:ORG/NAME`` id rather than a timm architecture name."""
    return architecture.startswith(HF_HUB_PREFIX)


def hub_repository(architecture: str) -> str | None:
    """The hub repository timm reads ``architecture``'s weights from (``ORG/NAME``, ``@revision``
    kept), or None when timm knows no hub repository for it."""
    if is_hub_architecture(architecture):
        return architecture[len(HF_HUB_PREFIX):]
    try:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(architecture)
    except Exception:  # an unknown name: timm's own error follows when the model is created
        return None
    return getattr(cfg, "hf_hub_id", None) or None


def _download_command(repository: str) -> str:
    repo, _, revision = repository.partition("@")
    return f"hf download {repo}" + (f" --revision {revision}" if revision else "")


@contextlib.contextmanager
def cache_only(architecture: str, field: str) -> Iterator[None]:
    """Run timm's hub reads for ``architecture`` from the local cache only; a repository (or a file
    of it) missing from the cache is a :class:`~fmkit.errors.UsageError` naming the repository, the
    cache folder and the fix. ``field`` is the recipe field the error names (``model.pretrained``)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    repository = hub_repository(architecture) or architecture
    try:
        yield
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        local = ("set model.architecture to the timm architecture its config.json names and model.pretrained "
                 "to a local weights file or folder" if is_hub_architecture(architecture)
                 else "set model.pretrained to a local weights file or folder")
        raise UsageError(
            f"{field}: {architecture!r} is read from the Hugging Face hub repository {repository!r}, which is not "
            f"in the local cache ({constants.HF_HUB_CACHE}), or not completely; fmkit-cv never downloads during a "
            f"run, whether or not HF_HUB_OFFLINE is set. Fix: on a connected machine run `{_download_command(repository)}` "
            f"with the same HF_HOME or HF_HUB_CACHE as the run, or {local}") from None
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"{field}: loading {architecture!r} from the Hugging Face hub repository {repository!r} in "
                         f"the local cache failed ({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''})"
                         ) from e
    finally:
        constants.HF_HUB_OFFLINE = old
