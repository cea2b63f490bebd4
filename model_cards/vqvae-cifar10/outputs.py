# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Decoded batches as what users get back: PIL images, audio dicts, video frames, arrays or tensors.

Torch and the model's processor only, so that the pipeline can travel as remote code; writing files
(grids, WAV, GIF, MP4) is `exporting.py`'s job.
"""

import torch

from .configuration_vqvae import VQVAEConfig
from .image_processing_vqvae import OUTPUT_TYPES
from .processors import processor_for


def postprocess_samples(samples: torch.Tensor, config: VQVAEConfig, output_type: str = "pil") -> list:
    """Convert a batch of [-1, 1] signals in the modality's layout to a list of outputs, one per sample.

    Images: `PIL.Image.Image`, uint8 `(H, W, C)` (`"np"`) or float `(C, H, W)` in [0, 1] (`"pt"`). Video: a list of
    PIL frames, uint8 `(T, H, W, C)` or float `(T, C, H, W)` in [0, 1]. Audio: `{"audio": (C, T) in [-1, 1],
    "sampling_rate"}`, a numpy array unless `"pt"`. Images and video frames are converted by the model's processor
    (`VQVAEImageProcessor.postprocess`).
    """
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
    samples = samples.detach().float().cpu().clamp(-1, 1)
    if config.modality == "audio":
        return [
            {
                "audio": sample if output_type == "pt" else sample.numpy(),
                "sampling_rate": config.sampling_rate,
            }
            for sample in samples
        ]
    return processor_for(config).postprocess(samples, output_type)


__all__ = ["postprocess_samples"]
