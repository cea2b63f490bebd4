# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Configuration of the VQ-VAE: one config for images, audio and video."""

from math import log2, prod

from transformers import PreTrainedConfig

from .number_checks import is_int, is_real
from .remote_code import VERSION_KEY, check_code_version
from .modalities import IMAGE, Modality, modality_named

QUANTIZERS = ("vq", "ema")
RECONSTRUCTION_LOSS_TYPES = ("mse", "psnr")

# Quantizer defaults: the EMA codebook with k-means init and dead-code restarts is what works best
# (on CIFAR-10 the paper-loss codebook collapsed to 55 of 512 codes; EMA + restarts kept all 512 and
# gained 2.7 dB). `quantizer="vq"` keeps the paper's exact recipe: no restarts, no k-means.
QUANTIZER_DEFAULTS = {
    "ema": {"dead_code_threshold": 1.0, "kmeans_init": True},
    "vq": {"dead_code_threshold": 0.0, "kmeans_init": False},
}


# Integer fields and their smallest valid values.
INT_FIELD_MINIMUMS = {
    "in_channels": 1,
    "hidden_channels": 1,
    "residual_channels": 1,
    "num_residual_layers": 0,
    "codebook_size": 2,
    "embedding_dim": 1,
    "kmeans_iters": 0,
    "search_chunk_size": 1,
    "sampling_rate": 1,
    "fps": 1,
    "num_speakers": 0,
}


def stride_plan(downsample_factors: list[int]) -> list[tuple[int, ...]]:
    """Per-layer strides: one layer per factor of two, striding only the axes that still need downsampling.

    E.g. `[2, 4, 4]` -> `[(2, 2, 2), (1, 2, 2)]`.
    """
    num_layers = int(log2(max(downsample_factors)))
    return [tuple(2 if factor > 2**i else 1 for factor in downsample_factors) for i in range(num_layers)]


class VQVAEConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VQVAEModel`] (van den Oord et al., 2017, "Neural Discrete Representation Learning").

    Fields documented as "modality default" may be left as `None`; they then take the value for `modality`
    (see `Modality.defaults` in `modalities.py` / `QUANTIZER_DEFAULTS`) and are written resolved into `config.json`.

    Args:
        modality (`str`, defaults to `"image"`):
            `"image"` (inputs `(B, C, H, W)`), `"audio"` (`(B, C, T)`) or `"video"` (`(B, T, C, H, W)`).
        in_channels (`int`, modality default):
            Channels of the signal (3 for RGB images and video, 1 for mono audio).
        hidden_channels (`int`, defaults to 128):
            Width of the encoder/decoder convolutions.
        residual_channels (`int`, defaults to 32):
            Bottleneck width inside each residual block (3x3 conv -> ReLU -> 1x1 conv).
        num_residual_layers (`int`, defaults to 2):
            Residual blocks in the encoder and, mirrored, in the decoder.
        downsample_factors (`int` or `list[int]`, modality default):
            Total downsampling per axis (powers of two); one int applies to every axis. Each factor of 2 is
            one strided 4-wide convolution, as in the paper.
        codebook_size (`int`, defaults to 512):
            K, the number of codes.
        embedding_dim (`int`, defaults to 64):
            D, the size of each code vector.
        reconstruction_loss_type (`str`, defaults to `"mse"`):
            The reconstruction term of the loss. `"mse"`: the paper's mean squared error. `"psnr"`: the mean over
            examples of `10 * log10(MSE_i)`, the negated per-example PSNR up to a constant (the PSNR loss of
            NAFNet, Chen et al. 2022). It weights each example by 1 / its MSE, so it optimises the mean
            per-example PSNR that image and video benchmarks report rather than the pooled MSE; its gradients are
            about 4.3 / MSE times those of `"mse"`, so beside it the commitment term weighs little: meant for
            training the decoder alone (codes frozen). With the encoder and codebook training too, fine-tuning the
            CIFAR-10 release on Fashion-MNIST with it re-seeded 392 dead codes and lost 0.4 dB PSNR, where
            `"mse"` re-seeded 11 and gained 2.2 dB.
        commitment_cost (`float`, defaults to 0.25):
            beta, the weight of the commitment term ||z_e - sg[e]||^2 (encoder side only).
        quantizer (`str`, defaults to `"ema"`):
            `"vq"`: codebook learned by the paper's codebook loss. `"ema"`: codebook learned by exponential moving
            averages of assigned encoder outputs (Sonnet's `VectorQuantizerEMA`), no codebook gradient.
        ema_decay (`float`, defaults to 0.99):
            Decay of the EMA statistics (code usage, and the codebook sums when `quantizer="ema"`).
        ema_epsilon (`float`, defaults to 1e-5):
            Laplace smoothing of the EMA code counts, so unused codes never divide by zero.
        dead_code_threshold (`float`, quantizer default):
            Codes whose EMA usage (assignments per training step, over all processes) falls below this are
            re-seeded from current encoder outputs. 0 disables restarts. The threshold is capped at 1/8 of the
            average code's usage per step, so that small batches (fewer latent vectors than 8 per code) do not
            restart healthy codes.
        kmeans_init (`bool`, quantizer default):
            Initialise the codebook by k-means on the first training batch.
        kmeans_iters (`int`, defaults to 10):
            Lloyd iterations of that k-means.
        search_chunk_size (`int`, defaults to 2**24):
            Upper bound on the number of distances held in memory at once by the nearest-code search.
        sample_size (`int` or `list[int]`, modality default):
            Input size per axis the model is trained on and samples at (`[H, W]`, `[T]`, `[T, H, W]`).
        sampling_rate (`int`, defaults to 16000):
            Audio sampling rate in Hz.
        audio_peak_level (`float`, *optional*):
            When set, each audio recording is scaled so that its peak is this level before it is windowed: the
            model then sees every speaker at one loudness (FSDD's peaks range from 0.02 to 0.7), and its
            reconstructions of a quiet recording are as good as of a loud one. `None` keeps recorded levels.
        fps (`int`, defaults to 8):
            Video frame rate, used when writing samples.
        num_speakers (`int`, defaults to 0):
            Conditions the decoder on a global label, the speaker, as the paper's audio model does: each speaker
            has a learned vector that is added to the decoder's activations before every layer, so the codes
            can leave the voice to it. 0 (the default) gives a decoder without speakers. The mechanism is the
            same for every modality (an image decoder can be conditioned on any global label this way).
        id2speaker (`dict[int, str]`, *optional*):
            The speakers' names by id; defaults to `"speaker_0"`, `"speaker_1"`, ... With `num_speakers` left
            at 0, its length sets `num_speakers`.
        spectral_loss_weight (`float`, defaults to 0.0):
            Audio only: the weight of a multi-resolution STFT loss (spectral convergence plus log-magnitude
            distance at `spectral_loss_fft_sizes`, as in Parallel WaveGAN) added to the waveform loss. It
            rewards the decoder for the harmonics a listener hears even where the waveform's phase is
            uncertain. 0 disables it.
        spectral_loss_fft_sizes (`list[int]`, defaults to `[128, 256, 512]`):
            FFT sizes of that loss (Hann windows of the same size, hop a quarter of it).
        code_noise (`float`, defaults to 0.0):
            In training, the fraction of code positions whose code the decoder receives replaced by a random one.
            A decoder trained so learns to decode imperfect code sequences (as a prior samples them) into a clean
            signal, and to take what the codes no longer tell reliably (the voice) from its speaker. 0 disables it.
        speaker_adversary_weight (`float`, defaults to 0.0):
            With speakers: the weight of a speaker classifier on the encoder's latents that the encoder is trained
            to defeat (a gradient reversal layer), so that the codes carry the content and leave the voice to the
            decoder's speaker vector, as voice conversion needs. Used in training only; 0 disables it.
    """

    model_type = "hf_vqvae"
    # The fields whose defaults each field selects: overriding `quantizer` or `modality` on a saved config
    # re-resolves them (see `apply_config_overrides`), so `quantizer="vq"` does not keep the EMA's restarts.
    fields_defaulted_by = {
        "modality": tuple(IMAGE.defaults),
        "quantizer": tuple(QUANTIZER_DEFAULTS["ema"]),
    }

    modality: str = "image"
    in_channels: int | None = None
    hidden_channels: int = 128
    residual_channels: int = 32
    num_residual_layers: int = 2
    downsample_factors: int | list[int] | tuple[int, ...] | None = None
    codebook_size: int = 512
    embedding_dim: int = 64
    reconstruction_loss_type: str = "mse"
    commitment_cost: float = 0.25
    quantizer: str = "ema"
    ema_decay: float = 0.99
    ema_epsilon: float = 1e-5
    dead_code_threshold: float | None = None
    kmeans_init: bool | None = None
    kmeans_iters: int = 10
    search_chunk_size: int = 2**24
    sample_size: int | list[int] | tuple[int, ...] | None = None
    sampling_rate: int = 16000
    audio_peak_level: float | None = None
    fps: int = 8
    num_speakers: int = 0
    id2speaker: dict[int, str] | None = None
    spectral_loss_weight: float = 0.0
    spectral_loss_fft_sizes: list[int] | tuple[int, ...] = (128, 256, 512)
    code_noise: float = 0.0
    speaker_adversary_weight: float = 0.0

    def __post_init__(self, **kwargs):
        check_code_version(type(self), kwargs.get(VERSION_KEY))  # remote code of the config's version
        modality_named(self.modality)  # an unknown name fails here, naming the known ones
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"Unknown quantizer={self.quantizer!r}; expected one of {QUANTIZERS}.")
        if self.reconstruction_loss_type not in RECONSTRUCTION_LOSS_TYPES:
            raise ValueError(
                f"Unknown reconstruction_loss_type={self.reconstruction_loss_type!r}; expected one of "
                f"{RECONSTRUCTION_LOSS_TYPES}."
            )
        for name, value in {**self.modality_spec.defaults, **QUANTIZER_DEFAULTS[self.quantizer]}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.downsample_factors = self._per_axis("downsample_factors")
        self.sample_size = self._per_axis("sample_size")
        self.spectral_loss_fft_sizes = [int(size) for size in self.spectral_loss_fft_sizes]
        self._resolve_speakers()
        self._check_fields()
        super().__post_init__(**kwargs)

    def _per_axis(self, name: str) -> list[int]:
        value = getattr(self, name)
        values = [int(value)] * self.num_axes if isinstance(value, int) else [int(v) for v in value]
        if len(values) != self.num_axes:
            raise ValueError(
                f"{name}={value} has {len(values)} entries but modality={self.modality!r} has {self.num_axes} "
                f"axes; give one int or {self.num_axes} values."
            )
        return values

    def _resolve_speakers(self) -> None:
        """`id2speaker` with int keys (JSON stores them as strings), and `num_speakers` consistent with it."""
        if self.id2speaker is None:
            if is_int(self.num_speakers) and self.num_speakers > 0:
                self.id2speaker = {i: f"speaker_{i}" for i in range(self.num_speakers)}
            return
        if not isinstance(self.id2speaker, dict):
            raise ValueError(f"id2speaker must be a dict of speaker ids to names, got {self.id2speaker!r}.")
        self.id2speaker = {int(key): str(name) for key, name in self.id2speaker.items()}
        if self.num_speakers == 0:
            self.num_speakers = len(self.id2speaker)
        if sorted(self.id2speaker) != list(range(self.num_speakers)):
            raise ValueError(
                f"id2speaker must name the speaker ids 0..{self.num_speakers - 1} (num_speakers={self.num_speakers}), "
                f"got ids {sorted(self.id2speaker)}."
            )
        if len(set(self.id2speaker.values())) != len(self.id2speaker):
            raise ValueError(f"id2speaker names each speaker once, got {self.id2speaker}.")

    def check_speakers(self, speaker_names: list[str]) -> None:
        """Raise a `ValueError` unless the decoder's speakers are `speaker_names`, the same names in the same
        order (as the data's speaker column encodes them)."""
        names = list((self.id2speaker or {}).values())
        if names != list(speaker_names):
            raise ValueError(
                f"The data's speakers are {list(speaker_names)}, but the VQ-VAE's are {names or 'none'}; the same "
                "names in the same order are needed (a VQ-VAE trained with --speaker_column on this data)."
            )

    @property
    def speaker2id(self) -> dict[str, int]:
        """Speaker ids by name (empty without speakers)."""
        return {name: speaker_id for speaker_id, name in (self.id2speaker or {}).items()}

    def _check_fields(self) -> None:
        for name, minimum in INT_FIELD_MINIMUMS.items():
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
        for name in ("commitment_cost", "dead_code_threshold"):
            if not is_real(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}.")
        for factor in self.downsample_factors:
            if factor < 1 or factor & (factor - 1):
                raise ValueError(f"downsample_factors must be powers of two, got {self.downsample_factors}.")
        for size, factor in zip(self.sample_size, self.downsample_factors, strict=True):
            if size < factor or size % factor:
                raise ValueError(
                    f"sample_size {self.sample_size} must be positive multiples of downsample_factors "
                    f"{self.downsample_factors}."
                )
        if len(stride_plan(self.downsample_factors)) > 1 and self.hidden_channels < 2:
            raise ValueError(
                f"hidden_channels must be >= 2 with downsample_factors {self.downsample_factors}: the inner "
                f"strided layers have hidden_channels // 2 channels; got {self.hidden_channels}."
            )
        if not is_real(self.ema_decay) or not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}.")
        if not is_real(self.ema_epsilon) or self.ema_epsilon <= 0:
            raise ValueError(f"ema_epsilon must be a number > 0, got {self.ema_epsilon!r}.")
        if not is_real(self.spectral_loss_weight) or self.spectral_loss_weight < 0:
            raise ValueError(
                f"spectral_loss_weight must be a number >= 0, got {self.spectral_loss_weight!r}."
            )
        if self.spectral_loss_weight and self.modality != "audio":
            raise ValueError(
                f"spectral_loss_weight is an audio loss; modality={self.modality!r} takes 0, got "
                f"{self.spectral_loss_weight}."
            )
        if not is_real(self.code_noise) or not 0.0 <= self.code_noise < 1.0:
            raise ValueError(f"code_noise must lie in [0, 1), got {self.code_noise!r}.")
        if not is_real(self.speaker_adversary_weight) or self.speaker_adversary_weight < 0:
            raise ValueError(
                f"speaker_adversary_weight must be a number >= 0, got {self.speaker_adversary_weight!r}."
            )
        if not self.spectral_loss_fft_sizes or any(size < 4 for size in self.spectral_loss_fft_sizes):
            raise ValueError(
                f"spectral_loss_fft_sizes must list FFT sizes >= 4, got {self.spectral_loss_fft_sizes}."
            )
        if self.audio_peak_level is not None and not 0.0 < self.audio_peak_level <= 1.0:
            raise ValueError(f"audio_peak_level must lie in (0, 1] or be None, got {self.audio_peak_level}.")

    @property
    def num_axes(self) -> int:
        """Spatial/temporal axes of one example: 1 (audio), 2 (image) or 3 (video)."""
        return self.modality_spec.num_axes

    @property
    def modality_spec(self) -> Modality:
        """What the modality implies: input name and layout, convolution rank, file types (`modalities.py`)."""
        return modality_named(self.modality)

    @property
    def code_shape(self) -> list[int]:
        """The code grid of one `sample_size` input, e.g. `[8, 8]` for 32x32 images."""
        return [
            size // factor for size, factor in zip(self.sample_size, self.downsample_factors, strict=True)
        ]

    @property
    def hop_length(self) -> int:
        """Input elements per code along all axes together (e.g. 16 pixels, or 64 audio samples)."""
        return prod(self.downsample_factors)


__all__ = ["VQVAEConfig"]
