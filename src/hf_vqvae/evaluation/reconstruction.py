"""Validation over a whole dataset: reconstruction quality and codebook usage of a VQ-VAE, NLL of a prior.

Metrics are accumulated over every example (gathered from all processes when an `Accelerator` is given), never
averaged per batch: per-batch perplexity, for one, depends on the batch size.
"""

import dataclasses
import itertools
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import SPEAKER_KEY, build_preprocessor, collate_examples, prepare_dataset
from ..models.eval_mode import eval_mode
from ..models.vqvae.modeling_vqvae import VQVAEModel
from . import metrics


def _gather(accelerator: Accelerator | None, tensor: torch.Tensor) -> torch.Tensor:
    return accelerator.gather_for_metrics(tensor) if accelerator is not None else tensor


def _batch_sums(
    model: VQVAEModel, inputs: torch.Tensor, reconstruction: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-batch sums of per-example metrics (so the caller can average over the whole set)."""
    count = inputs.shape[0]
    sums = {
        "mse": metrics.mse(reconstruction, inputs) * count,
        "psnr": metrics.psnr(reconstruction, inputs) * count,
    }
    modality = model.config.modality
    if modality in ("image", "video"):
        sums["psnr_uint8"] = metrics.psnr_uint8(reconstruction, inputs) * count
        sums["ssim"] = metrics.ssim(reconstruction, inputs) * count
    else:
        sums["snr_db"] = metrics.snr_db(reconstruction, inputs) * count
        sums["log_mel_distance"] = (
            metrics.log_mel_distance(reconstruction, inputs, model.config.sampling_rate) * count
        )
    return sums


@torch.no_grad()
def evaluate_reconstruction(
    model: VQVAEModel,
    batches: Iterable[dict],
    accelerator: Accelerator | None = None,
    show_progress_bar: bool = False,
) -> dict[str, float]:
    """Reconstruction metrics and codebook usage of `model` over all `batches` (model inputs under their names).

    Returns MSE, PSNR (float and 8-bit), SSIM (images/video) or SNR and log-mel distance (audio), each averaged
    over examples, and `codebook_perplexity`, `codebook_fraction_used`, `code_entropy_bits` over all codes.
    """

    def reconstructed():
        for batch in tqdm(batches, desc="validation", disable=not show_progress_bar, leave=False):
            inputs = batch[model.main_input_name].to(model.device)
            outputs = model(inputs, speaker_ids=batch.get(SPEAKER_KEY))
            reconstruction = outputs.reconstruction.float().clamp(-1, 1)
            yield tuple(_gather(accelerator, t) for t in (inputs, reconstruction, outputs.codes))

    return _accumulate_metrics(model, reconstructed())


@torch.no_grad()
def evaluate_recordings(
    model: VQVAEModel,
    recordings: Iterable[torch.Tensor],
    show_progress_bar: bool = False,
    num_recordings: int | None = None,
    speaker_ids: Iterable[int] | None = None,
) -> dict[str, float]:
    """Like [`evaluate_reconstruction`], over whole audio recordings of any length rather than fixed windows.

    Each recording, `(channels, time)`, is zero-padded to a multiple of the model's hop, encoded and decoded in
    one pass (the model is fully convolutional), and scored over its own samples only: what a user encoding a
    file gets, with no window edges and no padding in the metrics. `num_recordings` is the progress bar's total.
    A model with speakers decodes each recording with its speaker from `speaker_ids` (in the recordings' order).
    """
    if model.config.modality != "audio":
        raise ValueError(f"evaluate_recordings scores audio models, got modality={model.config.modality!r}.")
    hop = model.config.hop_length

    def reconstructed():
        progress = tqdm(recordings, "recordings", num_recordings, disable=not show_progress_bar, leave=False)
        speakers = iter(speaker_ids) if speaker_ids is not None else None
        for waveform in progress:
            length = waveform.shape[-1]
            padded = F.pad(waveform, (0, -length % hop))[None].to(model.device)
            outputs = model(padded, speaker_ids=next(speakers) if speakers is not None else None)
            reconstruction = outputs.reconstruction.float().clamp(-1, 1)[..., :length]
            yield padded[..., :length].float(), reconstruction, outputs.codes

    return _accumulate_metrics(model, reconstructed())


def evaluate_split(
    model: VQVAEModel,
    raw: Dataset,
    column: str,
    batch_size: int = 64,
    show_progress_bar: bool = False,
    speaker_column: str | None = None,
) -> dict[str, float]:
    """Reconstruction metrics of `model` over a raw dataset split, preprocessed as for validation: centred crops
    or clips in batches of `batch_size`, and whole audio recordings one at a time (the metrics a user's files
    get, so `batch_size` does not apply to audio). A model with speakers decodes each example with its speaker
    from `speaker_column` (speaker ids)."""
    preprocessor = build_preprocessor(model.config, train=False)
    if model.config.modality == "audio":
        whole = prepare_dataset(
            raw, dataclasses.replace(preprocessor, num_samples=None), column, speaker_column=speaker_column
        )
        # One recording at a time, without a collate that would fail on a batch whose only example is bad: bad
        # recordings are skipped and counted (up to `max_bad_fraction`) as in a batched split.
        good = (example for example in whole if example["input_values"] is not None)
        for_recordings, for_speakers = itertools.tee(good)  # read in lockstep: one example held at a time
        recordings = (example["input_values"] for example in for_recordings)
        speakers = (example[SPEAKER_KEY] for example in for_speakers) if speaker_column else None
        total = len(whole) if isinstance(whole, Dataset) else None
        return evaluate_recordings(model, recordings, show_progress_bar, total, speakers)
    loader = DataLoader(
        prepare_dataset(raw, preprocessor, column, speaker_column=speaker_column),
        batch_size=batch_size,
        collate_fn=collate_examples,
    )
    return evaluate_reconstruction(model, loader, show_progress_bar=show_progress_bar)


def compare_with_code_entropy(
    prior_bits_per_code: float, codes: torch.Tensor, codebook_size: int
) -> dict[str, float]:
    """The entropy of the code-usage distribution of `codes`, and a prior's bits per code over it: below 1, the
    prior predicts each code from its context better than the codes' frequencies alone do."""
    usage = metrics.CodebookUsage(codebook_size)
    usage.update(codes)
    # Codes that all take one value have no entropy to compare with (a collapsed codebook).
    entropy = usage.entropy_bits if usage.entropy_bits > 1e-9 else float("nan")
    return {
        "code_entropy_bits": usage.entropy_bits,
        "prior_bits_per_code_over_code_entropy": prior_bits_per_code / entropy,
    }


def _accumulate_metrics(
    model: VQVAEModel, reconstructed: Iterable[tuple[torch.Tensor, torch.Tensor, torch.LongTensor]]
) -> dict[str, float]:
    """Per-example metrics averaged over every `(inputs, reconstruction, codes)` batch, plus codebook usage."""
    usage = metrics.CodebookUsage(model.config.codebook_size)
    totals, count = {}, 0
    with eval_mode(model):
        for inputs, reconstruction, codes in reconstructed:
            for name, value in _batch_sums(model, inputs.float(), reconstruction).items():
                totals[name] = totals.get(name, 0.0) + value.item()
            usage.update(codes)
            count += inputs.shape[0]
    if count == 0:
        raise ValueError("The validation set is empty.")
    results = {name: total / count for name, total in totals.items()}
    results |= {
        "codebook_perplexity": usage.perplexity,
        "codebook_fraction_used": usage.fraction_used,
        "code_entropy_bits": usage.entropy_bits,
        "num_eval_examples": count,
    }
    return results


@torch.no_grad()
def evaluate_prior(
    prior: torch.nn.Module,
    batches: Iterable[dict],
    dims_per_example: int,
    accelerator: Accelerator | None = None,
) -> dict[str, float]:
    """Mean NLL of the prior over all code grids in `batches` (`codes`, optional `class_labels`), in nats and bits
    per code and in bits per input dimension of the signal the codes stand for."""
    total_nats, total_codes = 0.0, 0
    with eval_mode(prior):
        for batch in batches:
            codes = batch["codes"]
            logits = prior(codes, class_labels=batch.get("class_labels")).logits
            # Per example, so that `gather_for_metrics` can drop the examples Accelerate repeats to even out
            # the last batch across processes.
            nats = F.cross_entropy(logits.flatten(0, -2).float(), codes.flatten().long(), reduction="none")
            nats = _gather(accelerator, nats.view(len(codes), -1).sum(dim=1))
            total_nats += nats.sum().item()
            total_codes += nats.shape[0] * codes[0].numel()
    if total_codes == 0:
        raise ValueError("The validation set is empty: there are no code grids to score the prior on.")
    nats_per_code = total_nats / total_codes
    codes_per_example = int(torch.tensor(prior.config.code_shape).prod())
    return {
        "prior_nll_nats_per_code": nats_per_code,
        "prior_bits_per_code": metrics.bits_per_code(nats_per_code),
        "prior_bits_per_input_dim": metrics.bits_per_input_dim(
            nats_per_code, codes_per_example, dims_per_example
        ),
    }
