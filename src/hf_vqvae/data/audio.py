"""Audio: decode (soundfile, PyAV fallback), mix channels, resample, and cut fixed windows in [-1, 1].

Decoding does not go through `datasets.Audio`, whose decoder needs torchcodec: audio columns are read
undecoded (`{"bytes", "path"}`, see `columns.disable_media_decoding`) and decoded here.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from math import ceil, gcd
from typing import Any, ClassVar

import av
import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

from ..models.vqvae.feature_extraction_vqvae import mix_channels, set_level
from .cropping import window_start
from .robustness import BadExampleError


def decode_audio(value: Any) -> tuple[np.ndarray, int]:
    """
    Decodes one recording.

    Args:
        value: An undecoded `datasets.Audio` value `{"bytes", "path"}`; encoded bytes; a file path; or a
            decoded `{"array", "sampling_rate"}` dict whose array has shape (T,) or (C, T).

    Returns:
        `tuple[np.ndarray, int]`: the waveform, float32 of shape (C, T), and its sampling rate in Hz.

    Raises:
        BadExampleError: when the value cannot be decoded, is empty, or contains NaN/inf.
    """
    if isinstance(value, dict) and "array" in value:
        waveform, sampling_rate = _decoded_array(value)
    else:
        waveform, sampling_rate = _read_encoded(_encoded_source(value))
    if waveform.ndim != 2 or waveform.shape[-1] == 0 or sampling_rate <= 0:
        raise BadExampleError(
            f"audio must be a non-empty (C, T) waveform, got shape {waveform.shape} at {sampling_rate} Hz"
        )
    if not np.isfinite(waveform).all():
        raise BadExampleError("audio contains NaN or infinite samples")
    return waveform, sampling_rate


def _decoded_array(value: dict) -> tuple[np.ndarray, int]:
    """A decoded `{"array", "sampling_rate"}` as float32 `(C, T)`: integer PCM scaled by its full scale, as soundfile
    reads it, and an `(T, C)` array (soundfile's layout) transposed when it has more rows than columns."""
    try:
        waveform, sampling_rate = np.asarray(value["array"]), int(value["sampling_rate"])
        if np.issubdtype(waveform.dtype, np.integer):
            # Centred on the middle of the range, so unsigned PCM (8-bit WAV: 128 is silence) maps like signed.
            info = np.iinfo(waveform.dtype)
            half_range = (float(info.max) - float(info.min) + 1) / 2
            waveform = (waveform.astype(np.float64) - (float(info.min) + half_range)) / half_range
        waveform = waveform.astype(np.float32)
    except (KeyError, TypeError, ValueError) as error:
        raise BadExampleError(f"invalid decoded audio {{'array', 'sampling_rate'}}: {error!r}") from error
    if waveform.ndim == 1:
        return waveform[None], sampling_rate
    if waveform.ndim == 2 and waveform.shape[0] > waveform.shape[1]:
        return waveform.T, sampling_rate
    return waveform, sampling_rate


def _encoded_source(value: Any) -> bytes | str | os.PathLike:
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if not isinstance(value, (bytes, bytearray, str, os.PathLike)):
        raise BadExampleError(
            f"expected audio bytes, a path or an {{'array', 'sampling_rate'}} dict, got {value!r:.80}"
        )
    return value


def _check_complete_wav(source: bytes | str | os.PathLike) -> None:
    """Raises `BadExampleError` for a RIFF/WAVE file that is shorter than its header says (a copy or download cut
    short), which libsndfile would read as far as it goes without a word. Files written with an unknown length
    (a declared size of 0 or 0xFFFFFFFF, as streaming writers leave it) are not judged."""
    if isinstance(source, (bytes, bytearray)):
        header, size = bytes(source[:12]), len(source)
    elif not os.path.isfile(source):  # the decoders report what is missing
        return
    else:
        with open(source, "rb") as file:
            header = file.read(12)
        size = os.path.getsize(source)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    declared = int.from_bytes(header[4:8], "little") + 8
    if declared - 8 not in (0, 0xFFFFFFFF) and declared > size + 1:  # + 1: a missing pad byte is harmless
        raise BadExampleError(
            f"WAV file is truncated: its header declares {declared} bytes but only {size} are present"
        )


def _read_encoded(source: bytes | str | os.PathLike) -> tuple[np.ndarray, int]:
    _check_complete_wav(source)

    def reopen():  # each reader needs a fresh stream: a failed read leaves a BytesIO mid-way
        return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source

    try:
        samples, sampling_rate = soundfile.read(reopen(), dtype="float32", always_2d=True)
        return samples.T, sampling_rate  # soundfile gives (T, C)
    except soundfile.SoundFileError as soundfile_error:
        # libsndfile reads WAV/FLAC/OGG/MP3; FFmpeg (through PyAV) covers AAC, Opus-in-WebM, video files, ...
        try:
            return _read_with_pyav(reopen())
        except (av.FFmpegError, IndexError, OSError) as pyav_error:
            raise BadExampleError(
                f"cannot decode audio (soundfile: {soundfile_error}; PyAV: {pyav_error})"
            ) from None


def _read_with_pyav(source: io.BytesIO | str | os.PathLike) -> tuple[np.ndarray, int]:
    with av.open(source) as container:
        stream = container.streams.audio[0]  # IndexError when the file has no audio stream
        # Packed (interleaved) float32, same layout and rate, reshaped to (channels, samples): PyAV 18 crashes the
        # process converting planar audio of 8 or more channels (7.1 AAC) to an array.
        resampler = av.AudioResampler(format="flt")
        chunks = [
            resampled.to_ndarray().reshape(resampled.samples, -1).T
            for frame in [*container.decode(stream), None]  # None flushes the resampler
            for resampled in resampler.resample(frame)
        ]
        sampling_rate = stream.rate
    if not chunks:
        raise BadExampleError("audio stream has no samples")
    return np.concatenate(chunks, axis=1), sampling_rate


def resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Polyphase resampling of a (C, T) waveform along time; the length scales by target/orig."""
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    divisor = gcd(orig_sampling_rate, target_sampling_rate)
    up, down = target_sampling_rate // divisor, orig_sampling_rate // divisor
    return resample_poly(waveform, up, down, axis=-1).astype(np.float32)


def crop_or_pad(
    waveform: torch.Tensor, num_samples: int, random: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(C, T) -> (C, num_samples): pads short recordings with zeros at the end, else cuts a window."""
    total = waveform.shape[-1]
    if total <= num_samples:
        return F.pad(waveform, (0, num_samples - total))
    start = window_start(total, num_samples, random, generator)
    return waveform[:, start : start + num_samples]


def split_into_windows(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """
    Splits a whole recording into consecutive windows, zero-padding the last one (e.g. to measure SNR on
    whole recordings: encode/decode every window, then [`merge_windows`]).

    Args:
        waveform (`torch.Tensor` of shape (C, T)): the recording.
        num_samples (`int`): window length.

    Returns:
        `torch.Tensor` of shape (ceil(T / num_samples), C, num_samples).
    """
    channels, total = waveform.shape
    num_windows = max(1, ceil(total / num_samples))
    padded = F.pad(waveform, (0, num_windows * num_samples - total))
    return padded.reshape(channels, num_windows, num_samples).transpose(0, 1)


def merge_windows(windows: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of [`split_into_windows`]: (N, C, W) -> (C, length), dropping the padding."""
    num_windows, channels, num_samples = windows.shape
    return windows.transpose(0, 1).reshape(channels, num_windows * num_samples)[:, :length]


@dataclass
class AudioPreprocessor:
    """
    Turns one raw recording into a model input: decode -> mix channels -> resample -> clip -> window.

    Args:
        sampling_rate (`int`): Target rate in Hz (`config.sampling_rate`).
        num_samples (`int` or `None`): Window length in samples at `sampling_rate` (`config.sample_size[0]`);
            `None` keeps whole recordings (for evaluating whole files, one at a time).
        channels (`int`, defaults to 1): Output channels (`config.in_channels`).
        peak_level (`float`, *optional*): Scale each recording so its peak is this level
            (`config.audio_peak_level`); silent recordings stay silent. `None` keeps recorded levels.
        random_window (`bool`, defaults to `False`): Random window (training) instead of the centred one.
        generator (`torch.Generator`, *optional*): RNG for random windows; torch's global RNG if `None`.

    Calling it returns a `torch.FloatTensor` of shape (channels, num_samples) in [-1, 1] (short recordings
    zero-padded at the end), or raises `BadExampleError`.
    """

    sampling_rate: int
    num_samples: int | None
    channels: int = 1
    peak_level: float | None = None
    random_window: bool = False
    generator: torch.Generator | None = None

    modality: ClassVar[str] = "audio"

    def load_waveform(self, value: Any) -> torch.Tensor:
        """The whole recording, `torch.FloatTensor` of shape (channels, T) at `sampling_rate`, in [-1, 1]."""
        waveform, sampling_rate = decode_audio(value)
        try:  # the feature extractor's channels and level (VQVAEFeatureExtractor), resampled in between
            waveform = resample(mix_channels(waveform, self.channels), sampling_rate, self.sampling_rate)
        except ValueError as error:
            raise BadExampleError(str(error)) from error
        return torch.from_numpy(np.ascontiguousarray(set_level(waveform, self.peak_level), dtype=np.float32))

    def __call__(self, value: Any) -> torch.Tensor:
        waveform = self.load_waveform(value)
        if self.num_samples is None:
            return waveform
        return crop_or_pad(waveform, self.num_samples, self.random_window, self.generator)
