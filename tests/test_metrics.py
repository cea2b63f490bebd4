"""Reconstruction, codebook and likelihood metrics: known values and the documented conventions."""

import math

import pytest
import torch

from hf_vqvae.evaluation.metrics import (
    PSNR_UINT8_MAX_DB,
    CodebookUsage,
    bits_per_code,
    bits_per_input_dim,
    codebook_perplexity,
    log_mel_distance,
    mse,
    psnr,
    psnr_uint8,
    quantize_to_uint8,
    snr_db,
    ssim,
)


def uint8_levels_as_signal(levels: torch.Tensor) -> torch.Tensor:
    """The [-1, 1] signal that `quantize_to_uint8` maps back to exactly `levels`."""
    return levels.double() / 127.5 - 1


def test_mse_and_psnr_of_a_known_error():
    target = torch.zeros(2, 3, 8, 8)
    reconstruction = target + 0.1
    torch.testing.assert_close(mse(reconstruction, target), torch.tensor(0.01))
    # Peak-to-peak range 2 for [-1, 1]: 10 * log10(2**2 / 0.01).
    torch.testing.assert_close(psnr(reconstruction, target), torch.tensor(10 * math.log10(400)))


def test_psnr_is_the_mean_of_per_example_psnr():
    target = torch.zeros(2, 1, 4, 4)
    reconstruction = torch.stack([target[0] + 0.1, target[1] + 0.2])  # MSE 0.01 and 0.04
    per_example_mean = (10 * math.log10(4 / 0.01) + 10 * math.log10(4 / 0.04)) / 2
    torch.testing.assert_close(psnr(reconstruction, target), torch.tensor(per_example_mean))
    assert not math.isclose(per_example_mean, 10 * math.log10(4 / 0.025))  # PSNR of the mean MSE differs


def test_quantize_to_uint8_maps_the_range_onto_0_255_and_clamps():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0])
    torch.testing.assert_close(quantize_to_uint8(x), torch.tensor([0, 0, 128, 255, 255], dtype=torch.uint8))
    levels = torch.arange(256)
    assert torch.equal(quantize_to_uint8(uint8_levels_as_signal(levels)), levels.to(torch.uint8))


def test_psnr_uint8_of_one_level_error_everywhere():
    levels = torch.randint(0, 255, (3, 3, 8, 8))
    target, reconstruction = uint8_levels_as_signal(levels), uint8_levels_as_signal(levels + 1)
    torch.testing.assert_close(psnr_uint8(reconstruction, target), torch.tensor(20 * math.log10(255)))


def test_psnr_uint8_ignores_sub_level_differences_and_caps_exact_examples():
    target = uint8_levels_as_signal(torch.randint(0, 256, (2, 3, 8, 8)))
    # Differences below half a level vanish on the 8-bit grid: the example counts as exact.
    assert psnr_uint8(target + 0.001, target).item() == PSNR_UINT8_MAX_DB
    assert psnr(target + 0.001, target).item() < PSNR_UINT8_MAX_DB
    # An exact example averages in at the cap, not at +inf.
    reconstruction = torch.cat([target[:1], uint8_levels_as_signal(quantize_to_uint8(target[1:]).long() ^ 1)])
    expected = (PSNR_UINT8_MAX_DB + 20 * math.log10(255)) / 2
    torch.testing.assert_close(psnr_uint8(reconstruction, target), torch.tensor(expected))


def test_float_psnr_of_identical_inputs_is_infinite():
    x = torch.rand(2, 3, 8, 8)
    assert psnr(x, x).item() == math.inf


def test_ssim_is_one_for_identical_images_and_decreases_with_noise():
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(ssim(images, images), torch.tensor(1.0))
    scores = [ssim(images + sigma * torch.randn_like(images), images).item() for sigma in (0.05, 0.2, 0.5)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_is_the_standard_one_on_8_bit_images_scaled_to_0_1():
    from torchmetrics.functional.image import structural_similarity_index_measure

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    noisy = (images + 0.3 * torch.randn(4, 3, 32, 32, generator=generator)).clamp(-1, 1)
    standard = structural_similarity_index_measure(
        quantize_to_uint8(noisy).float() / 255, quantize_to_uint8(images).float() / 255, data_range=1.0
    )
    torch.testing.assert_close(ssim(noisy, images), standard)
    on_signed_values = structural_similarity_index_measure(noisy, images, data_range=2.0)
    assert abs(ssim(noisy, images) - on_signed_values) > 0.01


def test_ssim_of_videos_is_the_mean_over_frames():
    videos = torch.rand(2, 4, 3, 32, 32) * 2 - 1
    noisy = videos + 0.1 * torch.randn_like(videos)
    torch.testing.assert_close(ssim(noisy, videos), ssim(noisy.flatten(0, 1), videos.flatten(0, 1)))
    with pytest.raises(ValueError, match="B, C, H, W"):
        ssim(videos[:, 0, 0], videos[:, 0, 0])


def test_snr_of_a_known_noise_level():
    time = torch.arange(16000) / 16000
    target = torch.sin(2 * math.pi * 100 * time).reshape(1, 1, -1)  # 100 whole periods: energy T / 2
    error = 0.1 * torch.where(torch.arange(16000) % 2 == 0, 1.0, -1.0).reshape(1, 1, -1)  # energy 0.01 T
    torch.testing.assert_close(snr_db(target + error, target), torch.tensor(10 * math.log10(0.5 / 0.01)))


def test_snr_stays_finite_on_silence_and_exact_reconstructions():
    silence = torch.zeros(2, 1, 100)
    torch.testing.assert_close(snr_db(silence, silence), torch.tensor(0.0))
    signal = torch.ones(2, 1, 100)  # energy 100 against an error of eps = 1e-8
    torch.testing.assert_close(snr_db(signal, signal), torch.tensor(10 * math.log10((100 + 1e-8) / 1e-8)))


def test_log_mel_distance_is_zero_for_identical_signals_and_grows_with_the_error():
    waveforms = torch.rand(2, 1, 4096) * 2 - 1
    assert log_mel_distance(waveforms, waveforms, sampling_rate=16000).item() == 0.0
    noise = torch.randn_like(waveforms)
    small, large = (log_mel_distance(waveforms + s * noise, waveforms, 16000).item() for s in (0.05, 0.5))
    assert 0.0 < small < large
    with pytest.raises(ValueError, match="B, C, T"):
        log_mel_distance(waveforms[0], waveforms[0], 16000)


def test_codebook_perplexity_of_uniform_and_one_hot_usage():
    torch.testing.assert_close(codebook_perplexity(torch.full((16,), 7)), torch.tensor(16.0))
    torch.testing.assert_close(codebook_perplexity(torch.tensor([0, 0, 5, 0])), torch.tensor(1.0))
    with pytest.raises(ValueError, match="positive total"):
        codebook_perplexity(torch.zeros(4))


def test_codebook_usage_over_several_updates_equals_one_update_on_the_concatenation():
    batches = [torch.randint(0, 32, (n, 4, 4)) for n in (1, 5, 3)]
    accumulated, at_once = CodebookUsage(codebook_size=64), CodebookUsage(codebook_size=64)
    for codes in batches:
        accumulated.update(codes)
    at_once.update(torch.cat(batches))
    assert torch.equal(accumulated.counts, at_once.counts)
    assert accumulated.counts.sum() == 9 * 16
    assert accumulated.perplexity == at_once.perplexity
    assert accumulated.fraction_used == (accumulated.counts > 0).sum().item() / 64 <= 0.5


def test_codebook_usage_statistics_of_uniform_usage():
    usage = CodebookUsage(codebook_size=8)
    usage.update(torch.arange(8).repeat(3))
    assert usage.fraction_used == 1.0
    assert usage.perplexity == pytest.approx(8.0)
    assert usage.entropy_bits == pytest.approx(3.0)


def test_codebook_usage_rejects_bad_codes():
    usage = CodebookUsage(codebook_size=4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        usage.update(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer"):
        usage.update(torch.tensor([0.0, 1.0]))


def test_bits_conversions():
    assert bits_per_code(math.log(2)) == pytest.approx(1.0)
    assert bits_per_code(math.log(512)) == pytest.approx(9.0)
    # A uniform prior over K = 512 on 8x8 codes of a 3x32x32 image: 9 bits * 64 / 3072 dims.
    assert bits_per_input_dim(math.log(512), 64, 3 * 32 * 32) == pytest.approx(0.1875)
    torch.testing.assert_close(bits_per_code(torch.tensor([math.log(4)])), torch.tensor([2.0]))


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 4))
