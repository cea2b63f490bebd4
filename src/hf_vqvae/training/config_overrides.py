"""`--config_overrides "k=v,k=v"` as in transformers' example scripts, validated against the config's fields."""

import ast
import os
import re

from transformers import PreTrainedConfig, PreTrainedModel

# Split on commas that are not inside brackets, so list values like `downsample_factors=[2,4,4]` survive.
_TOP_LEVEL_COMMA = re.compile(r",(?![^\[]*\])")


def parse_config_overrides(overrides: str | None) -> dict:
    """Parse `"k=v,k=v"` into a dict; values are Python literals (ints, floats, bools, lists) or plain strings."""
    parsed = {}
    for item in _TOP_LEVEL_COMMA.split(overrides or ""):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--config_overrides entries must look like key=value, got {item!r}.")
        try:
            parsed[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value.strip()
    return parsed


def apply_config_overrides(
    config: PreTrainedConfig | type[PreTrainedConfig], overrides: dict
) -> PreTrainedConfig:
    """A validated config with `overrides` applied: on top of a config instance, or on a config class's defaults
    (so that fields left out take the defaults of the overridden modality). Fields whose defaults an overridden
    field selects (`config_class.fields_defaulted_by`) and that are not overridden themselves take the new
    defaults. Unknown keys raise a ValueError."""
    config_class = config if isinstance(config, type) else type(config)
    fields = config_class().to_dict()
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        known = sorted(k for k in fields if not k.startswith("_") and k not in PreTrainedConfig().to_dict())
        raise ValueError(
            f"--config_overrides: {unknown} are not fields of {config_class.__name__}; known: {known}."
        )
    base = {} if isinstance(config, type) else config.to_dict()
    for field, dependents in getattr(config_class, "fields_defaulted_by", {}).items():
        if field in overrides and overrides[field] != base.get(field, overrides[field]):
            for name in set(dependents) - set(overrides):
                base.pop(name, None)
    return config_class(**{**base, **overrides})


def from_pretrained_with_overrides(
    model_class: type[PreTrainedModel], name_or_path: str | os.PathLike, overrides: str | None
) -> PreTrainedModel:
    """`model_class.from_pretrained(name_or_path)` with `--config_overrides` applied to its saved config. Only
    fields that keep the weights' shapes (a loss, dropout) make sense here: the strict load refuses the others."""
    config = apply_config_overrides(
        model_class.config_class.from_pretrained(name_or_path), parse_config_overrides(overrides)
    )
    return model_class.from_pretrained(name_or_path, config=config)
