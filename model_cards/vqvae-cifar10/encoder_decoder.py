# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The VQ-VAE's convolutional encoder and decoder, for every modality: the convolution rank follows the config
(Conv1d for audio, Conv2d for images, Conv3d for video), as in the paper's and Sonnet's architecture."""

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_vqvae import VQVAEConfig, stride_plan

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _kernel_for(stride: tuple[int, ...]) -> tuple[int, ...]:
    # The paper's 4-wide kernels on strided axes; 3-wide (same size, padding 1) on the others.
    return tuple(4 if s == 2 else 3 for s in stride)


class VQVAEResidualBlock(GradientCheckpointingLayer):
    """h + conv1x1(ReLU(conv3x3(ReLU(h)))), as in the paper's and Sonnet's residual stacks."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        conv = CONV[config.num_axes]
        self.conv_in = conv(config.hidden_channels, config.residual_channels, 3, padding=1, bias=False)
        self.conv_out = conv(config.residual_channels, config.hidden_channels, 1, bias=False)
        self.activation = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.conv_out(self.activation(self.conv_in(self.activation(hidden_states))))
        return hidden_states + residual


class VQVAEResidualStack(nn.Module):
    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.layers = nn.ModuleList(VQVAEResidualBlock(config) for _ in range(config.num_residual_layers))
        self.activation = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor, biases: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`biases`, one per block, are added to each block's input (a decoder's speaker conditioning)."""
        for index, layer in enumerate(self.layers):
            if biases is not None:
                hidden_states = hidden_states + biases[index]
            hidden_states = layer(hidden_states)
        return self.activation(hidden_states)


class VQVAEEncoder(nn.Module):
    """Strided 4-wide convs (hidden/2 channels, the last one hidden) -> 3-wide conv -> residual stack -> 1x1 conv to
    `embedding_dim`."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        conv = CONV[config.num_axes]
        strides = stride_plan(config.downsample_factors)
        channels = [config.in_channels] + [config.hidden_channels // 2] * (len(strides) - 1)
        channels += [config.hidden_channels] if strides else []
        layers = []
        for stride, c_in, c_out in zip(strides, channels[:-1], channels[1:], strict=True):
            layers += [conv(c_in, c_out, _kernel_for(stride), stride=stride, padding=1), nn.ReLU()]
        layers.append(conv(channels[-1], config.hidden_channels, 3, padding=1))
        self.downsample = nn.Sequential(*layers)
        self.residual_stack = VQVAEResidualStack(config)
        self.pre_quantization = conv(config.hidden_channels, config.embedding_dim, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.pre_quantization(self.residual_stack(self.downsample(inputs)))


class VQVAEDecoder(nn.Module):
    """The encoder's mirror: 3-wide conv from `embedding_dim` -> residual stack -> strided transposed convs.

    With `config.num_speakers`, each speaker's learned vector is split into one bias per layer, added to the input
    of every residual block and every upsampling convolution and to the first conv's output: global conditioning
    as in WaveNet, reaching every resolution of the decoder.
    """

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        conv, conv_transpose = CONV[config.num_axes], CONV_TRANSPOSE[config.num_axes]
        strides = stride_plan(config.downsample_factors)[::-1]
        self.post_quantization = conv(config.embedding_dim, config.hidden_channels, 3, padding=1)
        self.residual_stack = VQVAEResidualStack(config)
        channels = [config.hidden_channels] + [config.hidden_channels // 2] * (len(strides) - 1)
        channels += [config.in_channels]
        layers = []
        for stride, c_in, c_out in zip(strides, channels[:-1], channels[1:], strict=True):
            layers += [conv_transpose(c_in, c_out, _kernel_for(stride), stride=stride, padding=1), nn.ReLU()]
        if strides:
            layers.pop()  # no activation on the output
        else:
            layers.append(conv(config.hidden_channels, config.in_channels, 3, padding=1))
        self.upsample = nn.Sequential(*layers)
        self.conditioning_widths = [config.hidden_channels] * (1 + config.num_residual_layers) + [
            layer.in_channels for layer in self.upsample if isinstance(layer, nn.modules.conv._ConvNd)
        ]
        self.speaker_embedding = (
            nn.Embedding(config.num_speakers, sum(self.conditioning_widths)) if config.num_speakers else None
        )

    def forward(self, quantized: torch.Tensor, speaker_ids: torch.LongTensor | None = None) -> torch.Tensor:
        """Decode `(batch, embedding_dim, *grid)` latents; a decoder with speakers takes their ids `(batch,)`, and
        without them speaks with the mean of its speakers' vectors."""
        biases = self._speaker_biases(speaker_ids, quantized)
        if biases is None:
            return self.upsample(self.residual_stack(self.post_quantization(quantized)))
        hidden_states = self.post_quantization(quantized) + biases[0]
        num_blocks = len(self.residual_stack.layers)
        hidden_states = self.residual_stack(hidden_states, biases[1 : 1 + num_blocks])
        upsampling_biases = iter(biases[1 + num_blocks :])
        for layer in self.upsample:
            if isinstance(layer, nn.modules.conv._ConvNd):
                hidden_states = hidden_states + next(upsampling_biases)
            hidden_states = layer(hidden_states)
        return hidden_states

    def _speaker_biases(
        self, speaker_ids: torch.LongTensor | None, quantized: torch.Tensor
    ) -> list[torch.Tensor] | None:
        if self.speaker_embedding is None:
            return None
        if speaker_ids is None:
            vectors = self.speaker_embedding.weight.mean(dim=0, keepdim=True).expand(quantized.shape[0], -1)
        else:
            vectors = self.speaker_embedding(speaker_ids)
        trailing = (1,) * (quantized.ndim - 2)
        return [
            chunk.reshape(*chunk.shape, *trailing).to(quantized.dtype)
            for chunk in vectors.split(self.conditioning_widths, dim=1)
        ]
