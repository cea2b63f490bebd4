"""A small classifier of images or recordings that scores samples: does a sample show the class it was asked for,
and how varied are the samples of one class?

The released models are judged with classifiers trained on the training split and held out from this repository;
[`SampleClassifier`] is this package's own stand-in, trained on the same training split a VQ-VAE and its prior
saw (never on the validation split it is measured on). Images are classified as they are ([-1, 1], any size);
recordings through a log-mel front-end, peak-normalised first so that the level of a sample does not matter.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from .metrics import slaney_mel_filters

CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_CONFIG = "classifier.json"


class LogMelFrontEnd(nn.Module):
    """Waveforms `(batch, channels, samples)` -> log-mel spectrograms `(batch, 1, mel_bins, frames)` of their
    mono mix, each waveform peak-normalised first."""

    def __init__(
        self, sampling_rate: int, fft_length: int = 256, hop_length: int = 64, num_mel_bins: int = 40
    ):
        super().__init__()
        self.fft_length, self.hop_length = fft_length, hop_length
        filters = slaney_mel_filters(fft_length, num_mel_bins, sampling_rate)
        self.register_buffer("mel_filters", torch.tensor(filters, dtype=torch.float32).T, persistent=False)
        self.register_buffer("window", torch.hann_window(fft_length), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        mono = waveforms.float().mean(dim=1)
        mono = mono / mono.abs().amax(dim=-1, keepdim=True).clamp_min(1e-4)
        spectrum = torch.stft(
            mono, self.fft_length, self.hop_length, window=self.window, return_complex=True
        ).abs()
        mel = torch.einsum("mf,bft->bmt", self.mel_filters, spectrum)
        return torch.log(mel + 1e-5)[:, None]


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU, then 2x2 max pooling."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SampleClassifier(nn.Module):
    """
    Three convolutional blocks, global average pooling (the feature vector that diversity is measured in) and a
    linear layer to the classes.

    Args:
        modality (`str`): `"image"` (inputs `(batch, channels, height, width)` in [-1, 1]) or `"audio"` (inputs
            `(batch, channels, samples)`).
        in_channels (`int`): channels of an input.
        num_classes (`int`): classes to tell apart.
        sampling_rate (`int`, *optional*): of the recordings (audio only).
        width (`int`, defaults to 32): channels of the first block (doubled in each following one).
    """

    def __init__(
        self,
        modality: str,
        in_channels: int,
        num_classes: int,
        sampling_rate: int | None = None,
        width: int = 32,
    ):
        super().__init__()
        if modality not in ("image", "audio"):
            raise ValueError(f"SampleClassifier classifies images or audio, got modality={modality!r}.")
        self.settings = {
            "modality": modality,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "sampling_rate": sampling_rate,
            "width": width,
        }
        self.front_end = LogMelFrontEnd(sampling_rate) if modality == "audio" else nn.Identity()
        first = 1 if modality == "audio" else in_channels
        self.blocks = nn.Sequential(
            nn.BatchNorm2d(first),
            conv_block(first, width),
            conv_block(width, 2 * width),
            conv_block(2 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """`(batch, 4 * width)` pooled features: the space in which samples' diversity is measured."""
        return self.blocks(self.front_end(inputs)).mean(dim=(2, 3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))

    def save(self, directory: str | Path, validation_accuracy: float) -> None:
        """Writes the weights (safetensors) and the settings with the measured validation accuracy."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, directory / CLASSIFIER_WEIGHTS)
        info = {**self.settings, "validation_accuracy": validation_accuracy}
        (directory / CLASSIFIER_CONFIG).write_text(json.dumps(info, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> tuple["SampleClassifier", float]:
        """A classifier written by `save`, in eval mode, and its validation accuracy."""
        info = json.loads((Path(directory) / CLASSIFIER_CONFIG).read_text())
        accuracy = info.pop("validation_accuracy")
        model = cls(**info)
        model.load_state_dict(load_file(Path(directory) / CLASSIFIER_WEIGHTS))
        return model.eval(), accuracy


def augmented(inputs: torch.Tensor, modality: str, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: images mirrored at random and shifted by up to 4 pixels (reflected borders);
    recordings shifted in time by up to 1/8 of their length (circularly) and scaled in level."""
    batch = len(inputs)
    if modality == "image":
        flip = torch.rand(batch, generator=generator) < 0.5
        inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
        padded = F.pad(inputs, (4, 4, 4, 4), mode="reflect")
        dy, dx = torch.randint(0, 9, (2,), generator=generator).tolist()
        return padded[..., dy : dy + inputs.shape[-2], dx : dx + inputs.shape[-1]]
    shift = int(torch.randint(-inputs.shape[-1] // 8, inputs.shape[-1] // 8 + 1, (1,), generator=generator))
    gain = 0.3 + 0.7 * torch.rand(batch, 1, 1, generator=generator)
    return torch.roll(inputs, shift, dims=-1) * gain


def train_classifier(
    model: SampleClassifier,
    inputs: torch.Tensor,
    labels: torch.LongTensor,
    epochs: int = 15,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 0,
) -> SampleClassifier:
    """AdamW with a one-cycle schedule over `epochs` passes of the in-memory training set, with augmentation."""
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, learning_rate, total_steps=epochs * steps_per_epoch
    )
    model.train()
    with tqdm(total=epochs * steps_per_epoch, desc="training the classifier") as bar:
        for _ in range(epochs):
            order = torch.randperm(len(inputs), generator=generator)
            for start in range(0, len(inputs), batch_size):
                rows = order[start : start + batch_size]
                batch = augmented(inputs[rows], model.settings["modality"], generator)
                loss = F.cross_entropy(model(batch), labels[rows], label_smoothing=0.1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def classify(
    model: SampleClassifier, inputs: torch.Tensor, batch_size: int = 500
) -> tuple[torch.LongTensor, torch.Tensor]:
    """Predicted classes `(n,)` and features `(n, 4 * width)` of `inputs`, batch by batch."""
    predictions, features = [], []
    for start in range(0, len(inputs), batch_size):
        batch_features = model.features(inputs[start : start + batch_size].float())
        predictions.append(model.head(batch_features).argmax(dim=-1))
        features.append(batch_features)
    return torch.cat(predictions), torch.cat(features)


__all__ = ["SampleClassifier", "classify", "train_classifier"]
