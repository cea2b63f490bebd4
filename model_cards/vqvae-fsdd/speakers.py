# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Speaker ids for a decoder conditioned on the speaker: from ids or names, one per example, checked against the
config, so that every entry point (model, pipeline, CLI) accepts and refuses the same things."""

from collections.abc import Sequence

import numpy as np
import torch

from .number_checks import is_int, is_integer_tensor
from .tracing import is_tracing

SpeakerIds = int | str | Sequence[int | str] | torch.Tensor


def speaker_ids_tensor(
    config, speaker_ids: SpeakerIds | None, batch_size: int, device: torch.device | str = "cpu"
) -> torch.LongTensor | None:
    """
    The `(batch_size,)` long tensor of speaker ids that `speaker_ids` names, or `None` when it is `None`.

    Args:
        config ([`VQVAEConfig`]): Gives `num_speakers` and `id2speaker`.
        speaker_ids: One id or name for the whole batch, or one per example (ids, names, or an integer tensor).
        batch_size (`int`): The number of examples.

    Raises:
        ValueError: for a model without speakers, an unknown name, an id out of range, or a count other than 1
            or `batch_size`.
    """
    if speaker_ids is None:
        return None
    if not config.num_speakers:
        raise ValueError(
            "speaker_ids was given, but this model's decoder has no speakers (config.num_speakers=0); "
            "speakers belong to models trained with `--speaker_column`."
        )
    if isinstance(speaker_ids, torch.Tensor):
        if not is_integer_tensor(speaker_ids) or speaker_ids.ndim > 1:
            raise ValueError(
                f"speaker_ids as a tensor must hold integer ids, one per example, got dtype {speaker_ids.dtype} "
                f"and shape {tuple(speaker_ids.shape)}."
            )
        ids = speaker_ids.to(device=device, dtype=torch.long).reshape(-1)
    else:
        many = isinstance(speaker_ids, Sequence | np.ndarray) and not isinstance(speaker_ids, str)
        values = list(speaker_ids) if many else [speaker_ids]
        ids = torch.tensor([_speaker_id(config, value) for value in values], dtype=torch.long, device=device)
    if ids.shape[0] == 1:
        ids = ids.expand(batch_size)
    if not is_tracing() and ids.shape[0] != batch_size:
        raise ValueError(
            f"Got {ids.shape[0]} speaker_ids for a batch of {batch_size}: give one, or one per example."
        )
    if not is_tracing() and (ids.min() < 0 or ids.max() >= config.num_speakers):
        raise ValueError(
            f"speaker_ids must lie in [0, {config.num_speakers}), got values in [{int(ids.min())}, "
            f"{int(ids.max())}]; {_accepted(config)}."
        )
    return ids


def _speaker_id(config, value: int | str) -> int:
    if isinstance(value, str):
        if value in config.speaker2id:
            return config.speaker2id[value]
        if value.isdigit():
            return _speaker_id(config, int(value))
        raise ValueError(f"Unknown speaker {value!r}; {_accepted(config)}.")
    if not is_int(value):
        raise ValueError(
            f"A speaker is an id or a name, got {value!r} ({type(value).__name__}); {_accepted(config)}."
        )
    if not 0 <= value < config.num_speakers:
        raise ValueError(f"Speaker id {value} is out of range; {_accepted(config)}.")
    return int(value)


def _accepted(config) -> str:
    names = ", ".join(f"{i}={name!r}" for i, name in sorted(config.id2speaker.items()))
    return f"this model's speakers are {names}"


__all__ = ["SpeakerIds", "speaker_ids_tensor"]
