# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The processor that goes with each VQ-VAE: an image processor, an audio feature extractor or a video processor,
by modality, built from the model's config and saved beside it."""

import os

from .feature_extraction_vqvae import VQVAEFeatureExtractor
from .image_processing_vqvae import VQVAEImageProcessor
from .video_processing_vqvae import VQVAEVideoProcessor

Processor = VQVAEImageProcessor | VQVAEFeatureExtractor | VQVAEVideoProcessor

# Per modality: the processor class and the Auto class that loads it.
PROCESSOR_CLASSES = {
    "image": ("AutoImageProcessor", VQVAEImageProcessor),
    "audio": ("AutoFeatureExtractor", VQVAEFeatureExtractor),
    "video": ("AutoVideoProcessor", VQVAEVideoProcessor),
}


def processor_auto_map(modality: str) -> dict[str, str]:
    """The `auto_map` entry pointing the modality's Auto class at the processor's code in the folder."""
    auto_class, processor_class = PROCESSOR_CLASSES[modality]
    return {auto_class: f"{processor_class.__module__.rsplit('.', 1)[-1]}.{processor_class.__name__}"}


def processor_for(config) -> Processor:
    """The processor of a VQ-VAE config: its sizes, channels, rate and level."""
    return PROCESSOR_CLASSES[config.modality][1].from_model_config(config)


def save_processor(config, save_directory: str | os.PathLike) -> None:
    """Write the config's processor into `save_directory` (`preprocessor_config.json`, or
    `video_preprocessor_config.json`), with the `auto_map` of its code."""
    processor = processor_for(config)
    processor.auto_map = processor_auto_map(config.modality)
    processor.save_pretrained(save_directory)


__all__ = ["PROCESSOR_CLASSES", "processor_for", "save_processor"]
