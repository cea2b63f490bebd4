"""VQVAEModel: forward/backward per modality, encode/decode, save/load, Auto classes, precision, bad input."""

import json
import math

import pytest
import torch
from conftest import tiny_config, tiny_inputs
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from hf_vqvae import VQVAEConfig, VQVAEModel
from hf_vqvae.evaluation.metrics import psnr
from hf_vqvae.models.vqvae.configuration_vqvae import stride_plan
from hf_vqvae.training.config_overrides import apply_config_overrides

MODALITIES = ["image", "audio", "video"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_forward_shapes_and_losses(modality):
    model = VQVAEModel(tiny_config(modality))
    inputs = tiny_inputs(modality)
    outputs = model(inputs)
    assert outputs.reconstruction.shape == inputs.shape
    expected_grid = {"image": (4, 4), "audio": (16,), "video": (2, 4, 4)}[modality]
    assert outputs.codes.shape == (inputs.shape[0], *expected_grid)
    assert outputs.codes.dtype == torch.long
    expected_loss = outputs.reconstruction_loss + outputs.codebook_loss + 0.25 * outputs.commitment_loss
    torch.testing.assert_close(outputs.loss, expected_loss)
    torch.testing.assert_close(outputs.reconstruction_loss, ((outputs.reconstruction - inputs) ** 2).mean())
    assert 1.0 <= outputs.perplexity.item() <= 16.0


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("quantizer", ["vq", "ema"])
def test_gradients_reach_encoder_through_straight_through_estimator(modality, quantizer):
    model = VQVAEModel(tiny_config(modality, quantizer=quantizer))
    model.decoder.zero_grad()
    reconstruction_only = model(tiny_inputs(modality)).reconstruction_loss
    reconstruction_only.backward()
    # Only the reconstruction loss, which sees the encoder solely through the straight-through copy of the codes.
    first_conv = model.encoder.downsample[0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


@pytest.mark.parametrize("modality", MODALITIES)
def test_psnr_reconstruction_loss_is_the_negated_mean_per_example_psnr(modality):
    model = VQVAEModel(tiny_config(modality, reconstruction_loss_type="psnr"))
    inputs = tiny_inputs(modality)
    outputs = model(inputs)
    # -PSNR_i = 10 log10(MSE_i) - 10 log10(peak^2), with peak-to-peak 2 for a [-1, 1] signal.
    expected = 10 * math.log10(4.0) - psnr(outputs.reconstruction.detach(), inputs)
    torch.testing.assert_close(outputs.reconstruction_loss.detach(), expected, rtol=0, atol=1e-4)
    expected_loss = outputs.reconstruction_loss + outputs.codebook_loss + 0.25 * outputs.commitment_loss
    torch.testing.assert_close(outputs.loss, expected_loss)


def test_psnr_loss_weights_each_example_by_its_inverse_mse_and_stays_finite_when_exact():
    model = VQVAEModel(tiny_config(reconstruction_loss_type="psnr"))
    inputs = torch.zeros(3, 3, 16, 16)
    reconstruction = torch.stack(
        [torch.zeros(3, 16, 16), torch.full((3, 16, 16), 0.1), torch.full((3, 16, 16), 0.2)]
    )
    reconstruction.requires_grad_(True)
    loss = model._reconstruction_loss(reconstruction, inputs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(reconstruction.grad).all()
    # d/dr of 10 log10(r^2) / 3 examples is 20 / (3 ln(10) r) per example, spread over its elements:
    # the example with twice the error gets half the gradient (MSE would give it twice).
    per_element = reconstruction.grad[1:].flatten(1)[:, 0] * reconstruction[0].numel()
    torch.testing.assert_close(per_element, 20 / (3 * math.log(10)) / torch.tensor([0.1, 0.2]))


def test_default_image_config_is_the_papers_cifar10_model():
    config = VQVAEConfig()
    assert (config.hidden_channels, config.residual_channels, config.num_residual_layers) == (128, 32, 2)
    assert (config.codebook_size, config.embedding_dim, config.commitment_cost) == (512, 64, 0.25)
    assert config.code_shape == [8, 8] and config.quantizer == "ema" and config.ema_decay == 0.99
    model = VQVAEModel(config)
    convs = [m for m in model.encoder.downsample if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((4, 4), (2, 2), 64),
        ((4, 4), (2, 2), 128),
        ((3, 3), (1, 1), 128),
    ]


def test_stride_plan_per_axis():
    assert stride_plan([2, 4, 4]) == [(2, 2, 2), (1, 2, 2)]
    assert stride_plan([64]) == [(2,)] * 6
    assert stride_plan([1, 1]) == []


def test_conv_init_is_pytorch_default_not_normal_002():
    model = VQVAEModel(VQVAEConfig())
    weight = model.encoder.downsample[0].weight  # fan_in = 3 * 4 * 4 = 48 -> kaiming bound 1/sqrt(48)
    assert weight.abs().max() <= 48**-0.5 + 1e-6 and weight.std() > 0.06  # uniform(-b, b): std = b / sqrt(3)


@pytest.mark.parametrize("modality", MODALITIES)
def test_decode_of_encode_equals_forward_in_eval_mode(modality):
    model = VQVAEModel(tiny_config(modality))
    inputs = tiny_inputs(modality)
    model(inputs)  # one training step runs the k-means init, so the codebook is a real one
    model.eval()
    encoded = model.encode(inputs)
    assert encoded.latents.shape == encoded.quantized.shape
    torch.testing.assert_close(model.decode(encoded.codes), model(inputs).reconstruction)
    torch.testing.assert_close(model.decode_latents(encoded.quantized), model(inputs).reconstruction)


@pytest.mark.parametrize("modality", MODALITIES)
def test_save_load_round_trip_is_bit_identical(modality, tmp_path):
    model = VQVAEModel(tiny_config(modality))
    inputs = tiny_inputs(modality)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        model(inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path)
    # The weights, the config and the model's code (remote code, tests/test_remote_code.py): no pickles.
    assert {
        p.name for p in tmp_path.iterdir() if not p.name.endswith((".py", "preprocessor_config.json"))
    } == {
        "config.json",
        "model.safetensors",
    }
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(reloaded, VQVAEModel)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VQVAEConfig)
    for (name, tensor), (other_name, other) in zip(
        model.state_dict().items(), reloaded.state_dict().items(), strict=True
    ):
        assert name == other_name and torch.equal(tensor, other), name
    model.eval()
    assert torch.equal(model(inputs).reconstruction, reloaded(inputs).reconstruction)


def test_config_rejects_unknown_modality_quantizer_and_loss_type():
    with pytest.raises(ValueError, match="Unknown modality='spectrogram'.*'image', 'audio', 'video'"):
        VQVAEConfig(modality="spectrogram")
    with pytest.raises(ValueError, match="Unknown quantizer='gumbel'.*'vq', 'ema'"):
        VQVAEConfig(quantizer="gumbel")
    with pytest.raises(ValueError, match="Unknown reconstruction_loss_type='l1'.*'mse', 'psnr'"):
        VQVAEConfig(reconstruction_loss_type="l1")
    with pytest.raises(ValueError, match="3 axes"):
        VQVAEConfig(modality="video", downsample_factors=[4, 4])
    with pytest.raises(ValueError, match="powers of two"):
        VQVAEConfig(downsample_factors=6)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"codebook_size": 8.5}, "codebook_size must be an integer >= 2, got 8.5"),
        ({"codebook_size": "abc"}, "codebook_size must be an integer >= 2, got 'abc'"),
        ({"num_residual_layers": -1}, "num_residual_layers must be an integer >= 0"),
        ({"ema_epsilon": -1.0}, "ema_epsilon must be a number > 0"),
        ({"dead_code_threshold": -1.0}, "dead_code_threshold must be a number >= 0"),
        (
            {"sample_size": 0},
            r"sample_size \[0, 0\] must be positive multiples of downsample_factors \[4, 4\]",
        ),
        ({"hidden_channels": 1}, "hidden_channels must be >= 2 with downsample_factors"),
    ],
)
def test_config_rejects_out_of_range_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        VQVAEConfig(**fields)


def test_overriding_the_quantizer_of_a_saved_config_takes_its_defaults():
    ema = VQVAEConfig(quantizer="ema")
    vq = apply_config_overrides(ema, {"quantizer": "vq"})
    assert (vq.dead_code_threshold, vq.kmeans_init) == (0.0, False)
    assert apply_config_overrides(ema, {"quantizer": "vq", "kmeans_init": True}).kmeans_init
    audio = apply_config_overrides(ema, {"modality": "audio"})
    assert (audio.in_channels, audio.sample_size) == (1, [16384])
    assert apply_config_overrides(ema, {"quantizer": "ema"}).to_dict() == ema.to_dict()


@pytest.mark.parametrize(
    ("modality", "bad_input", "error", "message"),
    [
        (
            "image",
            torch.zeros(3, 16, 16),
            ValueError,
            r"4-D tensor \(batch, channels, height, width\).*unsqueeze",
        ),
        ("image", torch.zeros(2, 1, 16, 16), ValueError, "Expected 3 channels at axis 1"),
        (
            "image",
            torch.zeros(2, 16, 16),
            ValueError,
            r"got shape \(2, 16, 16\) \(add a channel axis.*unsqueeze\(1\)",
        ),
        ("audio", torch.zeros(1, 256), ValueError, r"\(add a batch axis with `x.unsqueeze\(0\)`\)"),
        ("audio", torch.zeros(8, 256), ValueError, r"\(add a channel axis with `x.unsqueeze\(1\)`\)"),
        ("video", torch.zeros(2, 4, 16, 16), ValueError, r"\(add a channel axis with `x.unsqueeze\(2\)`\)"),
        (
            "image",
            torch.zeros(16, 16, 3),
            ValueError,
            r"channels last\? use `x.permute\(2, 0, 1\).unsqueeze\(0\)`",
        ),
        ("image", torch.zeros(2, 16, 16, 3), ValueError, r"channels last\? use `x.permute\(0, 3, 1, 2\)`\)"),
        ("video", torch.zeros(4, 16, 16, 3), ValueError, r"use `x.permute\(0, 3, 1, 2\).unsqueeze\(0\)`"),
        ("video", torch.zeros(2, 4, 16, 16, 3), ValueError, r"use `x.permute\(0, 1, 4, 2, 3\)`"),
        (
            "image",
            torch.zeros(2, 3, 18, 16),
            ValueError,
            r"not divisible.*nearest valid sizes per axis: \[\[16, 20\]",
        ),
        (
            "image",
            torch.zeros(2, 3, 16, 16, dtype=torch.uint8),
            TypeError,
            "floating-point.*x.float\\(\\) / 127.5",
        ),
        ("image", torch.full((2, 3, 16, 16), float("nan")), ValueError, "NaN or infinite"),
        ("audio", torch.zeros(2, 1, 250), ValueError, r"nearest valid sizes per axis: \[\[240, 256\]\]"),
        ("audio", torch.zeros(2, 2, 256), ValueError, "Expected 1 channels"),
        ("video", torch.zeros(2, 3, 4, 16, 16), ValueError, "Expected 3 channels at axis 2"),
        ("video", torch.zeros(2, 4, 3, 16, 16).tolist(), TypeError, "torch.Tensor"),
        ("image", torch.zeros(0, 3, 16, 16), ValueError, "empty batch"),
        ("image", torch.zeros(2, 3, 0, 16), ValueError, "not divisible"),
    ],
)
def test_bad_inputs_get_clear_errors(modality, bad_input, error, message):
    model = VQVAEModel(tiny_config(modality))
    with pytest.raises(error, match=message):
        model(bad_input)


def test_infinite_inputs_are_rejected():
    model = VQVAEModel(tiny_config("audio"))
    inputs = tiny_inputs("audio")
    inputs[0, 0, 3] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.encode(inputs)


@pytest.mark.parametrize(
    ("codes", "error", "message"),
    [
        (torch.full((2, 4, 4), 16), ValueError, r"in \[0, 16\), got values in \[16, 16\]"),
        (torch.full((2, 4, 4), -1), ValueError, r"in \[0, 16\)"),
        (
            torch.zeros(2, 16, dtype=torch.long),
            ValueError,
            r"2-D code grid.*\(batch, 4, 4\).*got shape \(2, 16\)",
        ),
        (torch.zeros(2, 4, 4), TypeError, "integer tensor"),
        (torch.zeros(2, 4, 4, dtype=torch.bool), TypeError, "integer tensor"),
    ],
)
def test_decode_rejects_bad_codes(codes, error, message):
    model = VQVAEModel(tiny_config("image"))
    with pytest.raises(error, match=message):
        model.decode(codes)


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.int32])
def test_decode_takes_narrow_integer_codes(dtype):
    model = VQVAEModel(tiny_config("image")).eval()
    codes = torch.randint(16, (2, 4, 4))
    assert torch.equal(model.decode(codes.to(dtype)), model.decode(codes))


def test_a_model_loaded_in_bf16_takes_float32_inputs(tmp_path):
    VQVAEModel(tiny_config("image")).save_pretrained(tmp_path)
    model = VQVAEModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    inputs = tiny_inputs("image")
    output = model(inputs)
    assert output.reconstruction.dtype == torch.bfloat16
    assert model.decode_latents(model.quantizer.lookup(output.codes)).dtype == torch.bfloat16


def test_pickled_weights_are_never_loaded(tmp_path):
    model = VQVAEModel(tiny_config("image"))
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="no file named model.safetensors"):
        VQVAEModel.from_pretrained(tmp_path)


def test_checkpoint_not_matching_its_config_fails_loudly(tmp_path):
    VQVAEModel(tiny_config("image")).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "codebook_size": 32}))
    with pytest.raises(ValueError, match="different shape.*quantizer.embedding.weight"):
        VQVAEModel.from_pretrained(tmp_path)

    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = load_file(tmp_path / "model.safetensors")
    del weights["decoder.post_quantization.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing from the checkpoint.*decoder.post_quantization.weight"):
        AutoModel.from_pretrained(tmp_path)


def test_bf16_loading_keeps_quantizer_fp32_and_casts_outputs(tmp_path):
    model = VQVAEModel(tiny_config("image"))
    model(tiny_inputs("image"))
    model.save_pretrained(tmp_path)
    low = VQVAEModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert low.encoder.pre_quantization.weight.dtype == torch.bfloat16
    assert all(
        t.dtype in (torch.float32, torch.bool, torch.long) for t in low.quantizer.state_dict().values()
    )
    outputs = low(tiny_inputs("image").bfloat16())
    assert outputs.reconstruction.dtype == torch.bfloat16 and torch.isfinite(outputs.loss)


def test_model_cast_by_hand_to_bf16_still_searches_in_fp32():
    model = VQVAEModel(tiny_config("image")).eval()
    latents = torch.randn(2, 8, 4, 4) * 3
    fp32_codes = model.quantizer(latents).codes
    model.to(torch.bfloat16)
    output = model.quantizer(latents.bfloat16())
    assert output.quantized.dtype == torch.bfloat16
    # The codebook itself was rounded to bf16 by `.to`, so compare with an fp32 search on those same values.
    expected = (
        torch.cdist(
            latents.bfloat16().float().permute(0, 2, 3, 1).reshape(-1, 8), model.quantizer.codebook.float()
        )
        .argmin(1)
        .view(2, 4, 4)
    )
    assert torch.equal(output.codes, expected)
    assert (output.codes == fp32_codes).float().mean() > 0.9


def test_gradient_checkpointing_gives_the_same_gradients():
    inputs = tiny_inputs("image")
    model = VQVAEModel(tiny_config("image", quantizer="vq"))
    model(inputs).loss.backward()
    reference = model.encoder.downsample[0].weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    model(inputs).loss.backward()
    torch.testing.assert_close(model.encoder.downsample[0].weight.grad, reference, rtol=1e-4, atol=1e-6)


def test_forward_returns_a_tuple_when_asked():
    model = VQVAEModel(tiny_config("image")).eval()
    inputs = torch.rand(2, 3, 16, 16) * 2 - 1
    output, as_tuple = model(inputs), model(inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], output.loss)
    torch.testing.assert_close(as_tuple[1], output.reconstruction)
