# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Loading that fails loudly and says why: a checkpoint whose weights do not match their config, a folder that does
not exist, a folder holding another kind of model, a damaged weights file or non-finite weights each get a clear
error instead of a partly random model or an error from deep inside the Hub client. Weights load from
safetensors only."""

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import PreTrainedModel

# Where a model came from, kept so that companion models (a VQ-VAE's `prior/`) load from the same snapshot.
HUB_LOADING_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "subfolder")
# A Hub repo id: "name" or "namespace/name" (what is not a local folder is looked up on the Hub).
REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")

_PROBLEMS = {
    "missing_keys": "missing from the checkpoint",
    "unexpected_keys": "not used by the model",
    "mismatched_keys": "of a different shape than the config implies",
}
# What to load instead when a folder holds the other model of the package.
_OTHER_MODEL_HINTS = {
    (
        "hf_vqvae",
        "hf_vqvae_prior",
    ): "it holds a prior: load it with VQPriorModel, or load the pipeline folder "
    "above it (the VQ-VAE is at its root)",
    ("hf_vqvae_prior", "hf_vqvae"): "it holds a VQ-VAE: its prior is in the `prior/` subfolder "
    "(VQPriorModel.from_pretrained(path, subfolder='prior'))",
}


def check_local_source(name_or_path: str | os.PathLike, subfolder: str | None = None) -> None:
    """Raises `OSError` for a path that names no folder: one that is not a Hub repo id ("org/name") and does not
    exist here (transformers would report it as a malformed repo id)."""
    name = os.fspath(name_or_path)
    folder = Path(name, subfolder or "")
    if Path(name).is_dir() and not folder.is_dir():
        raise OSError(f"No such model folder: {str(folder)!r} (subfolder {subfolder!r} of {name!r}).")
    if not Path(name).exists() and not REPO_ID.match(name):
        raise OSError(
            f"No such model folder: {name!r}. from_pretrained takes a local folder holding config.json and "
            "model.safetensors, or a Hub repo id ('org/name')."
        )


def check_model_type(cls, name_or_path: str | os.PathLike, subfolder: str | None = None) -> None:
    """Raises `ValueError` when a local folder's config.json is of another model type than `cls` loads."""
    config_file = Path(name_or_path, subfolder or "", "config.json")
    if not config_file.is_file():
        return
    try:
        found = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError):  # not a JSON object: transformers' own loading reports it
        return
    expected = cls.config_class.model_type
    if found != expected:
        hint = _OTHER_MODEL_HINTS.get(
            (expected, found), f"{cls.__name__} loads folders of model_type {expected!r}"
        )
        raise ValueError(
            f"{str(config_file.parent)!r} holds a model of type {found!r}, not {expected!r} ({cls.__name__}): {hint}."
        )


def check_finite_weights(model: PreTrainedModel, source) -> None:
    """Raises `ValueError` naming the tensors of a loaded model that hold NaN or infinite values."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and tensor.device.type != "meta" and not torch.isfinite(tensor).all()
    ]
    if bad:
        raise ValueError(
            f"The weights at {str(source)!r} hold NaN or infinite values in {len(bad)} tensor(s): {bad[:8]}. Every "
            "output would be NaN: the file is damaged, or was saved from a run whose loss diverged."
        )


def _not_ignored(model: PreTrainedModel, kind: str, keys) -> list[str]:
    """The `kind` keys of a load report that the model does not declare optional: transformers'
    `_keys_to_ignore_on_load_missing` / `_keys_to_ignore_on_load_unexpected` patterns (training-only weights, such
    as the VQ-VAE's speaker adversary, which a model may or may not carry)."""
    patterns = {
        "missing_keys": model._keys_to_ignore_on_load_missing,
        "unexpected_keys": model._keys_to_ignore_on_load_unexpected,
    }.get(kind) or []
    return [str(key) for key in keys if not any(re.search(pattern, str(key)) for pattern in patterns)]


class StrictLoadingMixin:
    """`from_pretrained` that checks what it loads.

    - transformers only logs a load report for missing or unexpected keys and re-initialises the missing ones, so a
      truncated or edited `model.safetensors` would load as a partly random model: that raises here. Passing
      `ignore_mismatched_sizes=True` keeps transformers' lenient behaviour for users who mean it.
    - A path that is neither a folder nor a Hub repo id, a folder of another model type, a damaged weights file and
      non-finite weights each raise an error that names the folder or file.
    - Weights load from safetensors only (`use_safetensors=True` unless the caller says otherwise): a folder with
      only a pickled `pytorch_model.bin` is refused rather than unpickled.

    The loaded model remembers the hub arguments it was loaded with (`model.hub_loading_kwargs`: revision, cache
    folder, ...), so that a pipeline can load the matching prior from the same snapshot.
    """

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> PreTrainedModel:
        kwargs.setdefault("use_safetensors", True)
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if isinstance(source, (str, os.PathLike)):
            check_local_source(source, kwargs.get("subfolder"))
            if kwargs.get("config") is None:
                check_model_type(cls, source, kwargs.get("subfolder"))
        hub_loading_kwargs = {key: kwargs[key] for key in HUB_LOADING_KWARGS if kwargs.get(key) is not None}
        lenient = kwargs.get("ignore_mismatched_sizes", False)
        return_info = kwargs.pop("output_loading_info", False)
        kwargs["ignore_mismatched_sizes"] = True
        try:
            model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        except SafetensorError as error:
            raise OSError(
                f"The weights file of {str(source)!r} (model.safetensors) is damaged or truncated and cannot be "
                f"read ({error}); download or save the model again."
            ) from error
        model.hub_loading_kwargs = hub_loading_kwargs
        keys = {kind: _not_ignored(model, kind, info.get(kind) or []) for kind in _PROBLEMS}
        problems = [
            f"{len(keys[kind])} tensors {what}: {sorted(keys[kind])[:8]}"
            for kind, what in _PROBLEMS.items()
            if keys[kind]
        ]
        if problems and not lenient:
            raise ValueError(
                f"The checkpoint at {str(source)!r} does not match its config ({cls.__name__}): "
                + "; ".join(problems)
            )
        check_finite_weights(model, source)
        return (model, info) if return_info else model
