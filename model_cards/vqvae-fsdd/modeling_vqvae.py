# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""VQ-VAE (van den Oord, Vinyals, Kavukcuoglu, 2017): encoder -> vector quantizer -> decoder, for images, audio and
video from one rank-parameterised implementation."""

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .remote_code import RemoteCodeMixin
from .strict_loading import StrictLoadingMixin
from .configuration_vqvae import VQVAEConfig
from .encoder_decoder import VQVAEDecoder, VQVAEEncoder
from .input_checks import check_codes, check_inputs
from .quantization import VectorQuantizer
from .speaker_adversary import SpeakerAdversary
from .speakers import SpeakerIds, speaker_ids_tensor
from .spectral_loss import multi_resolution_stft_loss

try:  # the processors need Pillow, which the model does not: as remote code it needs only torch and transformers
    from .processors import processor_auto_map, save_processor
except ImportError:
    processor_auto_map = save_processor = None


PSNR_LOSS_MSE_FLOOR = 1e-8


@dataclass
class VQVAEEncoderOutput(ModelOutput):
    """
    Args:
        latents (`torch.FloatTensor` of shape `(batch, embedding_dim, *code_grid)`):
            Continuous encoder outputs z_e(x), before quantization.
        quantized (`torch.FloatTensor` of shape `(batch, embedding_dim, *code_grid)`):
            z_q(x), the nearest code vectors (straight-through gradients to `latents`).
        codes (`torch.LongTensor` of shape `(batch, *code_grid)`):
            Indices of the codes, in [0, codebook_size).
    """

    latents: torch.FloatTensor | None = None
    quantized: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None


@dataclass
class VQVAEOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`):
            reconstruction_loss + codebook_loss + commitment_cost * commitment_loss (the paper's objective).
        reconstruction (`torch.FloatTensor`, same shape as the input):
            The decoded quantized latents.
        codes (`torch.LongTensor` of shape `(batch, *code_grid)`):
            Indices of the codes, in [0, codebook_size).
        reconstruction_loss (`torch.FloatTensor` of shape `()`):
            Mean squared error between input and reconstruction, or with `config.reconstruction_loss_type="psnr"`
            the mean over examples of `10 * log10(MSE_i)`.
        spectral_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The multi-resolution STFT loss, unweighted (audio with `config.spectral_loss_weight > 0`).
        speaker_adversary_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The speaker adversary's cross-entropy, unweighted (training with speaker ids and
            `config.speaker_adversary_weight > 0`); the encoder is trained to raise it.
        codebook_loss (`torch.FloatTensor` of shape `()`):
            ||sg[z_e] - e||^2 (zero for the EMA codebook, which is learned without gradients).
        commitment_loss (`torch.FloatTensor` of shape `()`):
            ||z_e - sg[e]||^2, unweighted.
        perplexity (`torch.FloatTensor` of shape `()`):
            exp(entropy) of the code usage in the batch.
        latents (`torch.FloatTensor` of shape `(batch, embedding_dim, *code_grid)`):
            Continuous encoder outputs z_e(x).
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    spectral_loss: torch.FloatTensor | None = None
    speaker_adversary_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    perplexity: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None


class VQVAEPreTrainedModel(RemoteCodeMixin, StrictLoadingMixin, PreTrainedModel):
    config: VQVAEConfig
    base_model_prefix = "vqvae"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["VectorQuantizer"]
    # Distances, argmin and the codebook statistics must stay fp32 even when the model is loaded in bf16/fp16.
    _keep_in_fp32_modules_strict = ["quantizer"]
    # The training-only speaker adversary: a checkpoint may carry it or not, whatever `speaker_adversary_weight` the
    # loading config has (fine-tuning adds a new one, or drops a trained one).
    _keys_to_ignore_on_load_missing = [r"^speaker_adversary\."]
    _keys_to_ignore_on_load_unexpected = [r"^speaker_adversary\."]

    def remote_code_auto_map(self) -> dict[str, str]:
        """The model's Auto classes, and the Auto class of its processor (image processor, feature extractor or
        video processor) where the processors can be imported."""
        extra = processor_auto_map(self.config.modality) if processor_auto_map is not None else {}
        return {**super().remote_code_auto_map(), **extra}

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """transformers' `save_pretrained`, with the model's code (`RemoteCodeMixin`) and its processor
        (`preprocessor_config.json`, or `video_preprocessor_config.json`), so that the folder alone says how a file
        becomes model input."""
        if (
            save_processor is not None
            and kwargs.get("is_main_process", True)
            and not os.path.isfile(save_directory)
        ):
            save_processor(self.config, save_directory)
        super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(
            module,
            (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        ):
            # PyTorch's default (Kaiming-uniform) init, as in the reference implementations; transformers' default
            # would re-initialise convs with N(0, 0.02).
            module.reset_parameters()
        elif isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, VQVAEDecoder) and module.speaker_embedding is not None:
            # Zero: a decoder given speakers starts as the decoder without them (fine-tuning adds them safely).
            init.zeros_(module.speaker_embedding.weight)
        elif isinstance(module, VectorQuantizer):
            bound = 1.0 / module.codebook_size
            init.uniform_(module.embedding.weight, -bound, bound)
            init.ones_(module.cluster_size)
            if module.use_ema:
                init.copy_(module.embed_sum, module.embedding.weight)
            init.constant_(module.initialized, not module.kmeans_init)
            init.zeros_(module.num_restarts)


class VQVAEModel(VQVAEPreTrainedModel):
    """
    The VQ-VAE: `forward` encodes, quantizes and decodes, and returns the paper's loss
    `reconstruction + ||sg[z_e] - e||^2 + beta * ||z_e - sg[e]||^2`; `encode` and `decode` expose the two halves
    around the discrete codes.

    Inputs follow the modality (`config.modality`), as floats in [-1, 1]: images `pixel_values`
    `(batch, channels, height, width)`, audio `input_values` `(batch, channels, time)`, video `pixel_values`
    `(batch, frames, channels, height, width)`. Sizes must be divisible by `config.downsample_factors`.
    """

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        self.main_input_name = config.modality_spec.input_name
        self.input_modalities = config.modality
        self.encoder = VQVAEEncoder(config)
        self.quantizer = VectorQuantizer(config)
        self.decoder = VQVAEDecoder(config)
        self.speaker_adversary = self._new_speaker_adversary()
        self.post_init()
        # Built under another default dtype (`from_config(..., dtype=torch.bfloat16)`), the quantizer still keeps
        # fp32 state, as `from_pretrained(..., dtype=...)` keeps it (`_keep_in_fp32_modules_strict`).
        self.quantizer.float()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        input_values: torch.FloatTensor | None = None,
        speaker_ids: SpeakerIds | None = None,
    ) -> VQVAEOutput:
        """Encode, quantize and decode a batch; returns the losses, the reconstruction and the codes.

        Pass the batch positionally or by its modality's name (`pixel_values` for images and video,
        `input_values` for audio). A model with speakers (`config.num_speakers`) decodes with `speaker_ids`: one
        id or name, or one per example; without them it speaks with the mean of its speakers' vectors.
        """
        inputs = self._select_inputs(pixel_values, input_values)
        speaker_ids = speaker_ids_tensor(self.config, speaker_ids, inputs.shape[0], inputs.device)
        latents = self.encoder(self.config.modality_spec.to_channels_first(inputs))
        quantization = self.quantizer(latents)
        reconstruction = self.config.modality_spec.from_channels_first(
            self.decoder(self._with_code_noise(quantization), speaker_ids)
        )
        reconstruction_loss = self._reconstruction_loss(reconstruction, inputs)
        loss = (
            reconstruction_loss
            + quantization.codebook_loss
            + self.config.commitment_cost * quantization.commitment_loss
        )
        spectral_loss = None
        if self.config.spectral_loss_weight:
            spectral_loss = multi_resolution_stft_loss(
                reconstruction, inputs, self.config.spectral_loss_fft_sizes
            )
            loss = loss + self.config.spectral_loss_weight * spectral_loss
        speaker_adversary_loss = None
        if self.training and self.speaker_adversary is not None and speaker_ids is not None:
            speaker_adversary_loss = self.speaker_adversary(latents, speaker_ids)
            loss = loss + self.config.speaker_adversary_weight * speaker_adversary_loss
        return VQVAEOutput(
            loss=loss,
            reconstruction=reconstruction,
            codes=quantization.codes,
            reconstruction_loss=reconstruction_loss,
            spectral_loss=spectral_loss,
            speaker_adversary_loss=speaker_adversary_loss,
            codebook_loss=quantization.codebook_loss,
            commitment_loss=quantization.commitment_loss,
            perplexity=quantization.perplexity,
            latents=latents,
        )

    def encode(
        self, pixel_values: torch.FloatTensor | None = None, input_values: torch.FloatTensor | None = None
    ) -> VQVAEEncoderOutput:
        """Map a batch to its code grid `(batch, *code_grid)` (and the latents before and after quantization)."""
        inputs = self._select_inputs(pixel_values, input_values)
        latents = self.encoder(self.config.modality_spec.to_channels_first(inputs))
        quantization = self.quantizer(latents)
        return VQVAEEncoderOutput(latents=latents, quantized=quantization.quantized, codes=quantization.codes)

    def decode(self, codes: torch.LongTensor, speaker_ids: SpeakerIds | None = None) -> torch.FloatTensor:
        """Reconstruct signals from code grids `(batch, *code_grid)`; the output has the modality's input layout.

        A model with speakers speaks with `speaker_ids` (one id or name, or one per example): encoding one
        speaker's recording and decoding it with another's id converts the voice.
        """
        check_codes(self.config, codes)
        return self.decode_latents(self.quantizer.lookup(codes.long()), speaker_ids)

    def decode_latents(
        self, quantized: torch.FloatTensor, speaker_ids: SpeakerIds | None = None
    ) -> torch.FloatTensor:
        """Reconstruct signals from quantized latents `(batch, embedding_dim, *code_grid)`."""
        speaker_ids = speaker_ids_tensor(self.config, speaker_ids, quantized.shape[0], quantized.device)
        return self.config.modality_spec.from_channels_first(
            self.decoder(quantized.to(self.decoder.post_quantization.weight.dtype), speaker_ids)
        )

    def add_speakers(self, names: list[str]) -> None:
        """Model surgery for fine-tuning with speakers: gives a decoder without them one vector per speaker in
        `names` (ids in that order), zero, so that until trained the model decodes exactly as before."""
        if self.config.num_speakers:
            raise ValueError(f"This model already has speakers: {self.config.id2speaker}.")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"Give at least one speaker name, each once; got {names!r}.")
        weight = self.decoder.post_quantization.weight
        embedding = nn.Embedding(
            len(names), sum(self.decoder.conditioning_widths), device=weight.device, dtype=weight.dtype
        )
        nn.init.zeros_(embedding.weight)
        self.decoder.speaker_embedding = embedding
        self.config.id2speaker = dict(enumerate(map(str, names)))
        self.config.num_speakers = len(names)
        self.speaker_adversary = self._new_speaker_adversary()
        if self.speaker_adversary is not None:
            self.speaker_adversary.to(device=weight.device, dtype=weight.dtype)

    def _new_speaker_adversary(self) -> SpeakerAdversary | None:
        """The training-only speaker adversary (`config.speaker_adversary_weight`), for a model with speakers."""
        if not (self.config.num_speakers and self.config.speaker_adversary_weight):
            return None
        return SpeakerAdversary(self.config)

    def _with_code_noise(self, quantization) -> torch.Tensor:
        """The quantized latents the decoder trains on: with `config.code_noise`, that fraction of positions
        holds a random code's vector instead (training only; no gradient reaches the encoder through them)."""
        if not (self.training and self.config.code_noise):
            return quantization.quantized
        codes = quantization.codes
        replaced = torch.rand(codes.shape, device=codes.device) < self.config.code_noise
        random_codes = torch.randint_like(codes, self.config.codebook_size)
        noisy = self.quantizer.lookup(random_codes).to(quantization.quantized.dtype)
        return torch.where(replaced.unsqueeze(1), noisy, quantization.quantized)

    def _reconstruction_loss(self, reconstruction: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The reconstruction term `config.reconstruction_loss_type` names, computed in fp32 under autocast."""
        reconstruction, inputs = reconstruction.float(), inputs.float()
        if self.config.reconstruction_loss_type == "mse":
            return nn.functional.mse_loss(reconstruction, inputs)
        per_example_mse = (reconstruction - inputs).pow(2).flatten(1).mean(dim=1)
        # The floor (86 dB on a [-1, 1] signal) keeps an exactly reconstructed example from giving -inf.
        return (10 * torch.log10(per_example_mse + PSNR_LOSS_MSE_FLOOR)).mean()

    def _select_inputs(
        self, pixel_values: torch.Tensor | None, input_values: torch.Tensor | None
    ) -> torch.Tensor:
        if (pixel_values is None) == (input_values is None):
            raise ValueError(
                f"Pass exactly one input batch: `{self.main_input_name}` for modality={self.config.modality!r} "
                "(or positionally)."
            )
        inputs = pixel_values if pixel_values is not None else input_values
        check_inputs(self.config, inputs)
        # Like transformers' vision models: inputs follow the weights' dtype, so a bf16-loaded model takes fp32.
        return inputs.to(self.encoder_dtype)

    @property
    def encoder_dtype(self) -> torch.dtype:
        """The dtype of the encoder's weights, which inputs are cast to."""
        return next(self.encoder.parameters()).dtype


__all__ = ["VQVAEEncoderOutput", "VQVAEModel", "VQVAEOutput", "VQVAEPreTrainedModel"]
