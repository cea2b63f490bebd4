"""Whole recordings of any length through a VQ-VAE: level-independent reconstruction and voice conversion.

A recording is peak-normalised to the model's `audio_peak_level` (the level it was trained at), encoded and
decoded in chunks (the model is fully convolutional; each chunk carries context on both sides, so that chunk
edges do not show), and the output is scaled back by the same gain: a take at its recorded level and the same
take normalised give the same reconstruction, up to that scale.
"""

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models.vqvae.speakers import SpeakerIds, speaker_ids_tensor

# Chunk and context lengths in codes: chunks long enough to keep the per-call overhead small, context longer than
# the receptive field of the encoder and decoder (a few codes on each side).
CHUNK_CODES = 2048
CONTEXT_CODES = 32
# Below this peak a recording is treated as silence and is not amplified.
SILENCE_PEAK = 1e-4


def peak_gain(waveform: torch.Tensor, peak_level: float | None) -> float:
    """The gain that brings `waveform`'s peak to `peak_level` (1 when the model keeps recorded levels).

    Raises:
        ValueError: for a silent or empty recording, which has no level to normalise.
    """
    if waveform.numel() == 0:
        raise ValueError("The recording is empty: there is nothing to encode.")
    peak = waveform.abs().max().item()
    if peak < SILENCE_PEAK:
        raise ValueError(
            f"The recording is silent (peak {peak:.1e}, below {SILENCE_PEAK:g} of full scale): there is no voice "
            "to encode or convert."
        )
    return 1.0 if peak_level is None else peak_level / peak


@torch.no_grad()
def reconstruct_recording(
    model,
    waveform: torch.Tensor,
    speaker_ids: SpeakerIds | None = None,
    chunk_codes: int = CHUNK_CODES,
    show_progress_bar: bool = False,
) -> torch.Tensor:
    """
    Encode and decode one recording `(channels, samples)` of any length at the model's rate, decoding with
    `speaker_ids` (one id or name) when given: with another speaker than the recording's, a voice conversion.

    Returns:
        `torch.Tensor` of shape `(channels, samples)`, at the recording's own level, clamped to [-1, 1].
    """
    config = model.config
    if config.modality != "audio":
        raise ValueError(f"Whole recordings are audio; this model's modality is {config.modality!r}.")
    if waveform.ndim != 2 or waveform.shape[0] != config.in_channels:
        raise ValueError(
            f"Expected one recording of shape ({config.in_channels}, samples), got {tuple(waveform.shape)}."
        )
    speaker_ids_tensor(config, speaker_ids, 1)  # an unknown speaker fails before any chunk is encoded
    gain = peak_gain(waveform, config.audio_peak_level)
    hop, length = config.hop_length, waveform.shape[-1]
    padded = F.pad(waveform.float() * gain, (0, -length % hop))
    chunk, context = chunk_codes * hop, CONTEXT_CODES * hop
    pieces = []
    starts = range(0, padded.shape[-1], chunk)
    for start in tqdm(starts, "chunks", disable=not show_progress_bar or len(starts) == 1, leave=False):
        left, right = min(context, start), min(context, padded.shape[-1] - start - chunk)
        window = padded[:, start - left : start + chunk + max(right, 0)].to(model.device)
        codes = model.encode(window[None]).codes
        decoded = model.decode(codes, speaker_ids=speaker_ids)[0].float().cpu()
        pieces.append(decoded[:, left : left + chunk])
    return (torch.cat(pieces, dim=-1)[:, :length] / gain).clamp(-1, 1)


def convert_voice(model, waveform: torch.Tensor, speaker: int | str, **kwargs) -> torch.Tensor:
    """The recording `(channels, samples)` spoken by `speaker` (an id or a name of `model.config.id2speaker`): its
    codes keep what is said, and the decoder gives it the other voice. See [`reconstruct_recording`]."""
    if not model.config.num_speakers:
        raise ValueError(
            "Voice conversion needs a VQ-VAE whose decoder has speakers (config.num_speakers=0 here); train one "
            "with `train_vqvae.py --speaker_column`."
        )
    return reconstruct_recording(model, waveform, speaker_ids=speaker, **kwargs)


__all__ = ["convert_voice", "peak_gain", "reconstruct_recording"]
