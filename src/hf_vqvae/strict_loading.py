"""Checkpoints whose weights do not match their config fail loudly instead of being silently re-initialised, and
weights load from safetensors only."""

from transformers import PreTrainedModel

# Where a model came from, kept so that companion models (a VQ-VAE's `prior/`) load from the same snapshot.
HUB_LOADING_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "subfolder")

_PROBLEMS = {
    "missing_keys": "missing from the checkpoint",
    "unexpected_keys": "not used by the model",
    "mismatched_keys": "of a different shape than the config implies",
}


class StrictLoadingMixin:
    """`from_pretrained` that raises when the checkpoint's tensors do not match the config.

    transformers only logs a load report for missing or unexpected keys and re-initialises the missing ones, so a
    truncated or edited `model.safetensors` would load as a partly random model. Passing
    `ignore_mismatched_sizes=True` keeps transformers' lenient behaviour for users who mean it.

    Weights load from safetensors only (`use_safetensors=True` unless the caller says otherwise): a folder with
    only a pickled `pytorch_model.bin` is refused rather than unpickled.

    The loaded model remembers the hub arguments it was loaded with (`model.hub_loading_kwargs`: revision, cache
    folder, ...), so that a pipeline can load the matching prior from the same snapshot.
    """

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> PreTrainedModel:
        kwargs.setdefault("use_safetensors", True)
        hub_loading_kwargs = {key: kwargs[key] for key in HUB_LOADING_KWARGS if kwargs.get(key) is not None}
        if kwargs.get("ignore_mismatched_sizes"):
            model = super().from_pretrained(*args, **kwargs)
            model.hub_loading_kwargs = hub_loading_kwargs
            return model
        return_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            *args, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs
        )
        model.hub_loading_kwargs = hub_loading_kwargs
        problems = [
            f"{len(info[kind])} tensors {what}: {sorted(map(str, info[kind]))[:8]}"
            for kind, what in _PROBLEMS.items()
            if info.get(kind)
        ]
        if problems:
            raise ValueError(
                f"The checkpoint at {args[0] if args else kwargs.get('pretrained_model_name_or_path')!r} does not "
                f"match its config ({cls.__name__}): " + "; ".join(problems)
            )
        return (model, info) if return_info else model
