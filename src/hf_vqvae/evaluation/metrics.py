"""Reconstruction, codebook and likelihood metrics for VQ-VAEs and their code priors.

Conventions shared by every function here:

- Signals live in [-1, 1] (the models' input range); the first axis is the batch.
- Reconstruction metrics are computed **per example, then averaged over the batch** (the usual convention
  of VQ-VAE papers); averaging batch values weighted by batch size then gives the same number for any
  batching of the evaluation set.
- Metric functions return 0-dim float tensors (like `torchmetrics.functional`); call `.item()` for a number.
  `CodebookUsage` summaries are Python floats, ready for logs and model cards.
"""

import math

import numpy as np
import torch
from torch.distributions import Categorical
from transformers.audio_utils import mel_filter_bank, spectrogram_batch, window_function

# An example whose [0, 255]-quantised reconstruction is exact gets this PSNR instead of +inf, so that one
# exact example (common on flat images such as MNIST digits) cannot make the per-example mean infinite.
PSNR_UINT8_MAX_DB = 100.0


def _check_pair(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"reconstruction and target must have the same shape, got {tuple(reconstruction.shape)} and "
            f"{tuple(target.shape)}."
        )
    if target.ndim < 2:
        raise ValueError(f"Expected a batch of examples (batch, ...), got shape {tuple(target.shape)}.")


def _per_example_mse(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`(batch, ...)` -> `(batch,)` mean squared error over every non-batch element, computed in float64."""
    error = reconstruction.double() - target.double()
    return error.pow(2).flatten(1).mean(dim=1)


def mse(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    Mean squared error over all elements (for equal-sized examples this equals the mean of per-example MSEs).

    Args:
        reconstruction (`torch.Tensor` of shape `(batch, ...)`): model output in [-1, 1].
        target (`torch.Tensor` of the same shape): the original signal in [-1, 1].

    Returns:
        `torch.Tensor`: 0-dim, in squared signal units (a [-1, 1] signal).
    """
    _check_pair(reconstruction, target)
    return _per_example_mse(reconstruction, target).mean().float()


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """
    Peak signal-to-noise ratio of float reconstructions, `10 * log10(data_range**2 / MSE)` per example, then
    averaged over the batch.

    This is PSNR of the model's continuous output. For the figure usually reported for images, which compares
    the stored 8-bit images, use [`psnr_uint8`]. An exactly reproduced example has infinite PSNR.

    Args:
        reconstruction (`torch.Tensor` of shape `(batch, ...)`): model output, e.g. images `(B, C, H, W)`,
            videos `(B, T, C, H, W)` (one PSNR per video) or audio `(B, C, T)`.
        target (`torch.Tensor` of the same shape): the original signal.
        data_range (`float`, defaults to 2.0): peak-to-peak range of the signal, 2.0 for [-1, 1].

    Returns:
        `torch.Tensor`: 0-dim, the mean over examples of each example's PSNR, in dB.
    """
    _check_pair(reconstruction, target)
    per_example = 10 * torch.log10(data_range**2 / _per_example_mse(reconstruction, target))
    return per_example.mean().float()


def quantize_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """
    Map a [-1, 1] signal onto the 256 integer levels images are stored with: `round((clamp(x) + 1) * 127.5)`.

    Args:
        x (`torch.Tensor` of any shape): values in [-1, 1]; values outside are clamped as when saving images.

    Returns:
        `torch.Tensor` of dtype `torch.uint8` and the same shape, values in [0, 255].
    """
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def psnr_uint8(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    PSNR on [0, 255]-quantised reconstructions: the original and the reconstruction are both mapped to uint8
    levels with [`quantize_to_uint8`] (what saving them as PNG does), then PSNR with peak 255 is computed per
    example and averaged over the batch. This is the PSNR the released model cards report.

    An example whose quantised reconstruction is exact scores `PSNR_UINT8_MAX_DB` (100 dB) rather than +inf.

    Args:
        reconstruction (`torch.Tensor` of shape `(batch, ...)`): model output in [-1, 1], e.g. images
            `(B, C, H, W)` or videos `(B, T, C, H, W)` (one PSNR per video).
        target (`torch.Tensor` of the same shape): the original images in [-1, 1].

    Returns:
        `torch.Tensor`: 0-dim, the mean over examples of each example's PSNR, in dB.
    """
    _check_pair(reconstruction, target)
    error = _per_example_mse(quantize_to_uint8(reconstruction), quantize_to_uint8(target))
    per_example = (10 * torch.log10(255.0**2 / error)).clamp(max=PSNR_UINT8_MAX_DB)
    return per_example.mean().float()


def ssim(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    Structural similarity (torchmetrics; 11x11 Gaussian window, sigma 1.5) per image or video frame, then averaged
    over all images or frames; on the images quantised to 8 bits and scaled to [0, 1], as the standard
    definition and other tools compute it (SSIM is not shift-invariant: on [-1, 1] values it differs, lower on
    CIFAR-10 and higher on dark-background video).

    Args:
        reconstruction (`torch.Tensor` of shape `(B, C, H, W)` or `(B, T, C, H, W)`): model output in [-1, 1].
        target (`torch.Tensor` of the same shape): the original images or videos.

    Returns:
        `torch.Tensor`: 0-dim, mean SSIM (1 for identical inputs).
    """
    # torchmetrics belongs to the `train` extra: import it only when SSIM is asked for.
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_pair(reconstruction, target)
    if target.ndim not in (4, 5):
        raise ValueError(f"ssim expects (B, C, H, W) or (B, T, C, H, W) inputs, got {tuple(target.shape)}.")
    # (B, T, C, H, W) -> (B * T, C, H, W): SSIM is an image metric, so every frame counts as one image.
    frames, target_frames = (
        quantize_to_uint8(x.flatten(0, -4)).float() / 255 for x in (reconstruction, target)
    )
    return structural_similarity_index_measure(frames, target_frames, data_range=1.0)


def snr_db(reconstruction: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """
    Signal-to-noise ratio of waveforms, `10 * log10(||x||^2 / ||x - x_hat||^2)` per example (all channels
    together), averaged over the batch.

    `eps` is added to both energies, so a silent clip reconstructed as silence scores 0 dB and an exact
    reconstruction a large finite value instead of +inf.

    Args:
        reconstruction (`torch.Tensor` of shape `(B, C, T)`): reconstructed waveforms in [-1, 1].
        target (`torch.Tensor` of the same shape): the original waveforms.
        eps (`float`, defaults to 1e-8): energy added to signal and error.

    Returns:
        `torch.Tensor`: 0-dim, mean SNR in dB.
    """
    _check_pair(reconstruction, target)
    signal_energy = target.double().pow(2).flatten(1).sum(dim=1)
    error_energy = (target.double() - reconstruction.double()).pow(2).flatten(1).sum(dim=1)
    return (10 * torch.log10((signal_energy + eps) / (error_energy + eps))).mean().float()


def slaney_mel_filters(fft_length: int, num_mel_filters: int, sampling_rate: int) -> np.ndarray:
    """A Slaney mel filter bank `(fft_length // 2 + 1, num_mel_filters)` from 0 Hz to Nyquist
    (`transformers.audio_utils`), as librosa's defaults build it."""
    return mel_filter_bank(
        num_frequency_bins=fft_length // 2 + 1,
        num_mel_filters=num_mel_filters,
        min_frequency=0.0,
        max_frequency=sampling_rate / 2,
        sampling_rate=sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    )


def log_mel_distance(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    sampling_rate: int,
    *,
    fft_length: int = 1024,
    hop_length: int = 256,
    num_mel_filters: int = 80,
    mel_floor: float = 1e-5,
) -> torch.Tensor:
    """
    Mean absolute (L1) difference between natural-log mel spectrograms, as in the mel losses of HiFi-GAN and
    DAC. Spectrograms are magnitude (power 1) STFTs with a periodic Hann window, mapped to a Slaney mel filter
    bank spanning 0 Hz to Nyquist and floored at `mel_floor` before the log, computed with numpy by
    `transformers.audio_utils` for each channel of each example. The result is the mean over channels, mel
    bins and frames of all examples (clips have equal lengths, so this is the mean of per-example distances).

    Args:
        reconstruction (`torch.Tensor` of shape `(B, C, T)`): reconstructed waveforms in [-1, 1].
        target (`torch.Tensor` of the same shape): the original waveforms.
        sampling_rate (`int`): sampling rate of both, in Hz.
        fft_length (`int`, defaults to 1024): STFT window and FFT size, in samples.
        hop_length (`int`, defaults to 256): STFT hop, in samples.
        num_mel_filters (`int`, defaults to 80): mel bands.
        mel_floor (`float`, defaults to 1e-5): magnitude floor, so silence gives log(1e-5) rather than -inf.

    Returns:
        `torch.Tensor`: 0-dim, mean |log mel(x_hat) - log mel(x)| (natural log); 0 for identical inputs.
    """
    _check_pair(reconstruction, target)
    if target.ndim != 3:
        raise ValueError(f"log_mel_distance expects waveforms (B, C, T), got shape {tuple(target.shape)}.")
    mel_filters = slaney_mel_filters(fft_length, num_mel_filters, sampling_rate)
    window = window_function(fft_length, "hann")

    def log_mel(waveforms: torch.Tensor) -> np.ndarray:
        # (B, C, T) -> B * C mono waveforms -> (B * C, num_mel_filters, frames)
        mono = list(waveforms.detach().reshape(-1, waveforms.shape[-1]).double().cpu().numpy())
        spectrograms = spectrogram_batch(
            mono,
            window,
            frame_length=fft_length,
            hop_length=hop_length,
            power=1.0,
            mel_filters=mel_filters,
            mel_floor=mel_floor,
            log_mel="log",
            dtype=np.float64,
        )
        return np.stack(spectrograms)

    return torch.tensor(np.abs(log_mel(reconstruction) - log_mel(target)).mean(), dtype=torch.float32)


def codebook_perplexity(counts: torch.Tensor) -> torch.Tensor:
    """
    Perplexity of code usage, `exp(H)` with `H` the entropy (nats) of the empirical code distribution: the
    effective number of codes in use, from 1 (one code) to K (all codes equally often).

    Args:
        counts (`torch.Tensor` of shape `(K,)`): how often each code was chosen (any non-negative numbers).

    Returns:
        `torch.Tensor`: 0-dim perplexity.
    """
    return _usage_entropy(counts).exp().float()


def _usage_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy in nats (float64) of `counts / counts.sum()`; unused codes contribute 0 (0 log 0 = 0)."""
    counts = counts.double()
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be a 1-D tensor of non-negative counts with a positive total.")
    return Categorical(probs=counts).entropy()


class CodebookUsage:
    """
    Counts code assignments over a whole evaluation set and summarises them.

    Per-batch perplexity depends on the batch size (a batch of N codes can use at most N distinct codes), so
    statistics meant for a model card are accumulated over the whole set first. `update` takes any number of
    codes: under distributed evaluation, gather them first (`accelerator.gather_for_metrics(codes)`) and
    update on every process, or on the main one only.

    Args:
        codebook_size (`int`): K, the number of codes.

    Example:

    ```python
    >>> import torch
    >>> usage = CodebookUsage(codebook_size=4)
    >>> usage.update(torch.tensor([[0, 1], [2, 3]]))
    >>> usage.perplexity, usage.fraction_used, usage.entropy_bits
    (4.0, 1.0, 2.0)

    ```
    """

    def __init__(self, codebook_size: int):
        if codebook_size < 1:
            raise ValueError(f"codebook_size must be a positive integer, got {codebook_size}.")
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        """
        Add codes to the counts.

        Args:
            codes (`torch.LongTensor` of any shape, e.g. `(batch, *code_shape)`): code indices in [0, K).
        """
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ValueError(f"codes must be an integer tensor, got dtype {codes.dtype}.")
        codes = codes.flatten()
        low, high = (codes.min().item(), codes.max().item()) if codes.numel() else (0, 0)
        if low < 0 or high >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got values in [{low}, {high}].")
        self.counts += torch.bincount(codes.long(), minlength=self.codebook_size).cpu()

    @property
    def entropy_bits(self) -> float:
        """Entropy of the code-usage distribution in bits (at most log2 K): the bits/code of a prior that
        knows only code frequencies, a baseline for the learned prior's bits/code."""
        return _usage_entropy(self.counts).item() / math.log(2)

    @property
    def perplexity(self) -> float:
        """Effective number of codes in use, `2 ** entropy_bits` (see [`codebook_perplexity`])."""
        return _usage_entropy(self.counts).exp().item()

    @property
    def fraction_used(self) -> float:
        """Fraction of the K codes chosen at least once."""
        return (self.counts > 0).double().mean().item()


def bits_per_code(nats_per_code: float | torch.Tensor) -> float | torch.Tensor:
    """
    Convert a prior's negative log-likelihood per code from nats to bits.

    Args:
        nats_per_code (`float` or `torch.Tensor`): mean NLL per code in nats (the prior's `loss`).

    Returns:
        Same type as the input: `nats_per_code / ln 2`, at most `log2 K` for a useful prior.
    """
    return nats_per_code / math.log(2)


def bits_per_input_dim(
    nats_per_code: float | torch.Tensor, codes_per_example: int, dims_per_example: int
) -> float | torch.Tensor:
    """
    Spread a prior's code NLL over the input's dimensions: `nats_per_code * codes / (dims * ln 2)`.

    This is the rate of the discrete code only; it leaves out the decoder's distortion, so it is not
    comparable with the bits/dim of likelihood models of pixels or audio samples.

    Args:
        nats_per_code (`float` or `torch.Tensor`): mean NLL per code in nats.
        codes_per_example (`int`): codes in one example's grid, e.g. 64 for 8x8.
        dims_per_example (`int`): scalar input values in one example, e.g. 3 * 32 * 32 = 3072 for CIFAR-10.

    Returns:
        Same type as the input: bits per input dimension.
    """
    return nats_per_code * codes_per_example / (dims_per_example * math.log(2))


__all__ = [
    "PSNR_UINT8_MAX_DB",
    "CodebookUsage",
    "bits_per_code",
    "bits_per_input_dim",
    "codebook_perplexity",
    "log_mel_distance",
    "mse",
    "psnr",
    "psnr_uint8",
    "quantize_to_uint8",
    "snr_db",
    "ssim",
]
