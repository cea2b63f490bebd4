# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""A speaker classifier on the encoder's latents, trained through a gradient reversal layer (Ganin & Lempitsky,
2015): it learns to name the speaker from z_e(x) while the encoder learns to make that impossible. A decoder
conditioned on the speaker then has to take the voice from its speaker vector, which is what voice conversion
(decoding one speaker's codes with another's id) needs."""

import torch
from torch import nn

from .encoder_decoder import CONV

ADVERSARY_CHANNELS = 128


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient's sign flipped backward."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return -grad_output


class SpeakerAdversary(nn.Module):
    """Two convolutions of kernel 3 over the code grid (the modality's rank), a mean over the grid, and a linear
    layer to one logit per speaker. `forward` returns the cross-entropy of its guesses; the encoder receives the
    negated gradient of it."""

    def __init__(self, config):
        super().__init__()
        conv = CONV[config.num_axes]
        self.layers = nn.Sequential(
            conv(config.embedding_dim, ADVERSARY_CHANNELS, 3, padding=1),
            nn.ReLU(),
            conv(ADVERSARY_CHANNELS, ADVERSARY_CHANNELS, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(ADVERSARY_CHANNELS, config.num_speakers)

    def logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Speaker logits `(batch, num_speakers)` of latents `(batch, embedding_dim, *code_grid)`, with the
        gradient to `latents` reversed."""
        hidden = self.layers(_ReverseGradient.apply(latents).to(self.classifier.weight.dtype))
        return self.classifier(hidden.flatten(2).mean(dim=2))

    def forward(self, latents: torch.Tensor, speaker_ids: torch.LongTensor) -> torch.Tensor:
        """The adversary's cross-entropy on `speaker_ids`, in fp32."""
        return nn.functional.cross_entropy(self.logits(latents).float(), speaker_ids)
