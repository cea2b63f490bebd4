"""Video prediction, as in the paper's video experiment: keep the codes of a clip's first frames, let the prior
sample the rest, and score the predicted frames against the true ones and against copying the last given frame."""

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..models.prior.modeling_prior import VQPriorModel
from ..models.vqvae.modeling_vqvae import VQVAEModel
from .metrics import psnr_uint8, ssim


@dataclass
class PredictionScores:
    """PSNR (dB, on 8-bit frames) and SSIM of the frames after the prompt, for the prior's predictions, for
    copying the last given frame, and for the VQ-VAE's reconstruction of the whole true clip (the best the codes
    allow)."""

    psnr: float
    ssim: float
    baseline_psnr: float
    baseline_ssim: float
    reconstruction_psnr: float
    reconstruction_ssim: float

    @property
    def psnr_gain(self) -> float:
        return self.psnr - self.baseline_psnr


def prompt_code_slices(vqvae: VQVAEModel, prompt_frames: int) -> int:
    """How many slices of the code grid's time axis cover exactly the first `prompt_frames` frames. Raises a
    `ValueError` when the frames do not end on a code slice, or leave nothing to predict."""
    config = vqvae.config
    if config.modality != "video":
        raise ValueError(f"Video prediction needs a video VQ-VAE, got a {config.modality} model.")
    time_factor, num_frames = config.downsample_factors[0], config.sample_size[0]
    if not 0 < prompt_frames < num_frames or prompt_frames % time_factor:
        raise ValueError(
            f"prompt_frames must be a multiple of the time downsampling {time_factor} in [{time_factor}, "
            f"{num_frames - time_factor}] for clips of {num_frames} frames, got {prompt_frames}."
        )
    return prompt_frames // time_factor


@torch.no_grad()
def predict_clips(
    vqvae: VQVAEModel,
    prior: VQPriorModel,
    clips: torch.Tensor,
    prompt_frames: int,
    generator: torch.Generator | None = None,
    batch_size: int = 16,
    **sampling,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Continue each clip from its first `prompt_frames` frames.

    Args:
        clips (`torch.Tensor` of shape `(B, T, C, H, W)`): true clips in [-1, 1].
        prompt_frames (`int`): frames given to the prior (their codes are kept).
        generator (`torch.Generator`, *optional*): drives the sampling, batch after batch.
        sampling: passed to [`VQPriorModel.generate`] (`temperature`, `top_k`, `top_p`).

    Returns:
        `(predictions, reconstructions)`: whole clips decoded from the kept and sampled codes, and from the true
        clip's codes, both `(B, T, C, H, W)` in [-1, 1].
    """
    kept = prompt_code_slices(vqvae, prompt_frames)
    predictions, reconstructions = [], []
    for start in tqdm(range(0, len(clips), batch_size), desc="predicting clips"):
        batch = clips[start : start + batch_size].to(vqvae.device, vqvae.dtype)
        codes = vqvae.encode(batch).codes
        sampled = prior.generate(len(batch), prompt_codes=codes[:, :kept], generator=generator, **sampling)
        predictions.append(vqvae.decode(sampled).float().clamp(-1, 1).cpu())
        reconstructions.append(vqvae.decode(codes).float().clamp(-1, 1).cpu())
    return torch.cat(predictions), torch.cat(reconstructions)


def prediction_scores(
    clips: torch.Tensor, predictions: torch.Tensor, reconstructions: torch.Tensor, prompt_frames: int
) -> PredictionScores:
    """Scores frames `prompt_frames + 1` onwards of `(B, T, C, H, W)` clips: PSNR per clip averaged over clips,
    SSIM averaged over frames. The baseline repeats frame `prompt_frames` of the true clip."""
    future = clips[:, prompt_frames:].float()
    last_given = clips[:, prompt_frames - 1 : prompt_frames].float().expand_as(future)
    scored = {
        name: (psnr_uint8(x[:, prompt_frames:], future).item(), ssim(x[:, prompt_frames:], future).item())
        for name, x in (("prediction", predictions), ("reconstruction", reconstructions))
    }
    return PredictionScores(
        psnr=scored["prediction"][0],
        ssim=scored["prediction"][1],
        baseline_psnr=psnr_uint8(last_given, future).item(),
        baseline_ssim=ssim(last_given, future).item(),
        reconstruction_psnr=scored["reconstruction"][0],
        reconstruction_ssim=scored["reconstruction"][1],
    )


__all__ = ["PredictionScores", "predict_clips", "prediction_scores", "prompt_code_slices"]
