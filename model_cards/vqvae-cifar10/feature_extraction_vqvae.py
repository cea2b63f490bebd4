# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The feature extractor of an audio VQ-VAE: from waveforms to `input_values` (and a `padding_mask`), as
transformers' EnCodec takes them.

It is the one definition of what the model expects of a recording besides its rate (the training data path, voice
conversion and the CLI use it) and is saved beside the model as `preprocessor_config.json`:

```python
>>> feature_extractor = AutoFeatureExtractor.from_pretrained("org/vqvae-fsdd")
>>> inputs = feature_extractor(waveform, sampling_rate=8000)
>>> codes = model.encode(inputs["input_values"]).codes
```
"""

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging

logger = logging.get_logger(__name__)

_ACCEPTED = "a float array (samples,) or (channels, samples) in [-1, 1], or a list of them"


def mix_channels(waveform: np.ndarray, channels: int) -> np.ndarray:
    """(C, T) -> (channels, T): averages to mono, repeats mono, or keeps matching channel counts; any other
    pair is a `ValueError`."""
    if waveform.shape[0] == channels:
        return waveform
    if channels == 1:
        return waveform.mean(axis=0, keepdims=True)
    if waveform.shape[0] == 1:
        return np.repeat(waveform, channels, axis=0)
    raise ValueError(
        f"cannot mix {waveform.shape[0]} audio channels to {channels}: give mono audio or {channels} channels."
    )


def set_level(waveform: np.ndarray, peak_level: float | None) -> np.ndarray:
    """Scales a recording so its peak is `peak_level` (silence stays silent; `None` keeps the recorded level),
    then clips to [-1, 1] (float files may exceed full scale, and resampling overshoots slightly)."""
    if peak_level is not None:
        peak = np.abs(waveform).max(initial=0.0)
        waveform = waveform * (peak_level / peak) if peak > 0 else waveform
    return np.clip(waveform, -1.0, 1.0)


def as_waveform(raw_audio) -> np.ndarray:
    """One recording as a float32 array (channels, samples); 1-D arrays are mono."""
    array = np.asarray(raw_audio.detach().cpu() if isinstance(raw_audio, torch.Tensor) else raw_audio)
    if array.dtype.kind not in "fiu" or array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise ValueError(
            f"raw_audio must be {_ACCEPTED}; got an array of shape {array.shape} ({array.dtype})."
        )
    if array.dtype.kind != "f":
        raise ValueError(
            f"raw_audio must be {_ACCEPTED}; got integer samples ({array.dtype}): scale them to [-1, 1] first."
        )
    return array[None] if array.ndim == 1 else array


class VQVAEFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns recordings into the input of an audio [`VQVAEModel`].

    Each recording is mixed to the model's channels (averaged to mono, or mono repeated), scaled to the peak level
    the model was trained at (`peak_level`; `None` keeps recorded levels) and clipped to [-1, 1]; the batch is
    zero-padded at the end to its longest recording, rounded up to a multiple of `hop_length` (the encoder's
    downsampling), and `padding_mask` marks the real samples. Recordings at another sampling rate are refused:
    resample them first (`hf_vqvae`'s loaders and CLI resample files for you).

    Args:
        feature_size (`int`, defaults to 1): channels of the model (`config.in_channels`).
        sampling_rate (`int`, defaults to 16000): the model's rate (`config.sampling_rate`).
        peak_level (`float`, *optional*): `config.audio_peak_level`.
        hop_length (`int`, defaults to 1): samples per code (`config.downsample_factors[0]`).
    """

    model_input_names = ["input_values", "padding_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        peak_level: float | None = None,
        hop_length: int = 1,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs
        )
        self.peak_level = peak_level
        self.hop_length = hop_length

    @classmethod
    def from_model_config(cls, config) -> "VQVAEFeatureExtractor":
        """The feature extractor of an audio VQ-VAE config."""
        return cls(
            feature_size=config.in_channels,
            sampling_rate=config.sampling_rate,
            peak_level=config.audio_peak_level,
            hop_length=config.downsample_factors[0],
        )

    def check_sampling_rate(self, sampling_rate: int | None) -> None:
        if sampling_rate is None:
            logger.warning_once(
                f"No sampling_rate given to {type(self).__name__}: the audio is taken to be at the model's "
                f"{self.sampling_rate} Hz. Pass sampling_rate to catch recordings at another rate."
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"This model takes audio at {self.sampling_rate} Hz, got sampling_rate={sampling_rate}: resample "
                "it first (hf_vqvae's data loaders and CLI resample files)."
            )

    def normalize(self, waveform: np.ndarray) -> np.ndarray:
        """One (C, T) recording at the model's rate in the model's channels and level, float32."""
        mixed = mix_channels(np.asarray(waveform, dtype=np.float32), self.feature_size)
        return np.ascontiguousarray(set_level(mixed, self.peak_level), dtype=np.float32)

    def __call__(
        self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        """
        Args:
            raw_audio: one recording or a list: float arrays (samples,) or (channels, samples) in [-1, 1].
            sampling_rate (`int`, *optional*): their rate; must be the model's.
            return_tensors (`str`, defaults to `"pt"`): `"pt"` or `"np"`.

        Returns:
            [`BatchFeature`] with `input_values` `(batch, channels, samples)` and `padding_mask` `(batch,
            samples)` (1 for real samples, 0 for padding).
        """
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected argument(s) {sorted(kwargs)}.")
        self.check_sampling_rate(sampling_rate)
        if isinstance(raw_audio, (list, tuple)) and not raw_audio:
            raise ValueError(f"raw_audio is empty; give {_ACCEPTED}.")
        is_batch = isinstance(raw_audio, (list, tuple)) and not np.isscalar(raw_audio[0])
        recordings = [
            self.normalize(as_waveform(audio)) for audio in (raw_audio if is_batch else [raw_audio])
        ]
        longest = max(recording.shape[-1] for recording in recordings)
        length = -(-longest // self.hop_length) * self.hop_length
        input_values = np.full((len(recordings), self.feature_size, length), self.padding_value, np.float32)
        padding_mask = np.zeros((len(recordings), length), np.int64)
        for index, recording in enumerate(recordings):
            input_values[index, :, : recording.shape[-1]] = recording
            padding_mask[index, : recording.shape[-1]] = 1
        return BatchFeature(
            {"input_values": input_values, "padding_mask": padding_mask}, tensor_type=return_tensors
        )


__all__ = ["VQVAEFeatureExtractor"]
