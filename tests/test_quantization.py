"""VectorQuantizer: search, losses, EMA, restarts, k-means, precision and state handling."""

import pytest
import torch
from conftest import tiny_config, tiny_inputs

from hf_vqvae import VectorQuantizer, VQVAEModel
from hf_vqvae.models.vqvae.quantization import nearest_codes


def make_quantizer(**overrides) -> VectorQuantizer:
    fields = {"kmeans_init": False, "dead_code_threshold": 0.0, **overrides}
    quantizer = VectorQuantizer(tiny_config("image", **fields))
    with torch.no_grad():
        quantizer.embedding.weight.normal_()
        if quantizer.use_ema:
            quantizer.embed_sum.copy_(quantizer.embedding.weight)
    return quantizer


def test_chunked_search_equals_full_search():
    vectors, codebook = torch.randn(1000, 8), torch.randn(300, 8)
    full = torch.cdist(vectors, codebook).argmin(1)
    assert torch.equal(nearest_codes(vectors, codebook, max_distances=10**9), full)
    for budget in (1, 299, 300, 4097):
        assert torch.equal(nearest_codes(vectors, codebook, max_distances=budget), full)


def test_quantized_output_is_the_nearest_code_with_straight_through_gradient():
    quantizer = make_quantizer().eval()
    latents = torch.randn(2, 8, 3, 3, requires_grad=True)
    output = quantizer(latents)
    expected = quantizer.codebook[output.codes].permute(0, 3, 1, 2)
    torch.testing.assert_close(output.quantized, expected)
    output.quantized.sum().backward()
    torch.testing.assert_close(latents.grad, torch.ones_like(latents))


def test_ema_moves_used_codes_toward_the_mean_of_their_assigned_vectors():
    quantizer = make_quantizer(quantizer="ema").train()
    latents = torch.randn(4, 8, 4, 4)
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 8)
    before = quantizer.codebook.detach().clone()
    codes = quantizer(latents).codes.flatten()
    decay, eps, k = 0.99, 1e-5, quantizer.codebook_size
    counts = torch.bincount(codes, minlength=k).float()
    sums = torch.zeros(k, 8).index_add_(0, codes, flat)
    cluster_size = decay * 1.0 + (1 - decay) * counts
    smoothed = (cluster_size + eps) / (cluster_size.sum() + k * eps) * cluster_size.sum()
    expected = (decay * before + (1 - decay) * sums) / smoothed[:, None]
    torch.testing.assert_close(quantizer.codebook, expected)
    used = counts > 0
    means = sums[used] / counts[used, None]
    assert ((quantizer.codebook[used] - means).norm(dim=1) < (before[used] - means).norm(dim=1)).all()


def test_vq_codebook_gets_gradient_and_ema_codebook_does_not():
    vq = VQVAEModel(tiny_config("image", quantizer="vq"))
    vq(tiny_inputs("image")).loss.backward()
    assert vq.quantizer.embedding.weight.grad.abs().sum() > 0
    ema = VQVAEModel(tiny_config("image", quantizer="ema"))
    assert not ema.quantizer.embedding.weight.requires_grad
    assert ema.quantizer.embedding.weight not in set(p for p in ema.parameters() if p.requires_grad)


def test_beta_scales_the_commitment_term_on_the_encoder_side_only():
    gradients = {}
    for beta in (0.25, 1.0):
        torch.manual_seed(0)
        model = VQVAEModel(tiny_config("image", quantizer="vq", commitment_cost=beta))
        latents = torch.randn(2, 8, 4, 4, requires_grad=True)
        output = model.quantizer(latents)
        loss = output.codebook_loss + beta * output.commitment_loss
        codebook_grad, latent_grad = torch.autograd.grad(loss, [model.quantizer.embedding.weight, latents])
        gradients[beta] = codebook_grad, latent_grad
    torch.testing.assert_close(gradients[0.25][0], gradients[1.0][0])  # the codebook term is not scaled
    torch.testing.assert_close(gradients[1.0][1], 4 * gradients[0.25][1])  # the encoder term is


def test_dead_codes_are_restarted_from_encoder_outputs_and_used_next_step():
    quantizer = make_quantizer(quantizer="ema", dead_code_threshold=0.5).train()
    with torch.no_grad():
        quantizer.cluster_size.zero_()  # every code looks dead
    latents = torch.randn(2, 8, 2, 2)  # 8 vectors for 16 dead codes: 8 get restarted
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 8)
    quantizer(latents)
    assert quantizer.num_restarts.item() == 8
    restarted = (quantizer.codebook[:, None, :] == flat[None]).all(-1).any(1)
    assert restarted.sum() == 8
    # Vector, count and EMA sum were reset together: the next EMA step keeps the code at its new vector.
    fresh = quantizer.cluster_size[restarted]
    torch.testing.assert_close(quantizer.embed_sum[restarted], quantizer.codebook[restarted] * fresh[:, None])
    torch.testing.assert_close(fresh, torch.full_like(fresh, 0.5))  # the average usage: 8 vectors / 16 codes
    next_codes = quantizer(latents).codes.unique()
    assert set(restarted.nonzero().flatten().tolist()) <= set(next_codes.tolist())


def test_small_batches_restart_dead_codes_but_not_healthy_ones():
    # 4 vectors per step for 16 codes: every code's usage (about 0.27) is far under the threshold of 1 assignment
    # per step, so only the cap at 1/8 of the average usage tells used codes from a code nothing picks.
    quantizer = make_quantizer(quantizer="ema", dead_code_threshold=1.0).train()
    with torch.no_grad():
        quantizer.cluster_size.fill_(0.25)
        quantizer.codebook[0] = 1e3  # nothing picks code 0
        quantizer.embed_sum.copy_(quantizer.codebook * 0.25)  # EMA state consistent with the codebook
    used = quantizer.codebook[1:].detach().clone()
    restarted_at = None
    for step in range(400):
        vectors = used[torch.arange(4 * step, 4 * step + 4) % 15]  # codes 1..15 in turn
        quantizer(vectors.view(1, 2, 2, 8).permute(0, 3, 1, 2))
        if quantizer.num_restarts.item():
            restarted_at = step
            break
    # Code 0's usage falls from 0.25 under 0.27 / 8 after about ln(0.25 / 0.033) / 0.01 = 200 steps.
    assert restarted_at is not None and 150 < restarted_at < 300
    assert quantizer.num_restarts.item() == 1 and quantizer.codebook[0].abs().max() < 1e2


def test_vq_codebook_with_kmeans_init_trains():
    model = VQVAEModel(tiny_config("image", quantizer="vq", kmeans_init=True)).train()
    model(tiny_inputs("image")).loss.backward()
    assert model.quantizer.initialized and model.quantizer.codebook.grad is not None


@pytest.mark.parametrize("quantizer_type", ["vq", "ema"])
def test_training_a_quantizer_cast_by_hand_to_bf16_is_refused_clearly(quantizer_type):
    model = VQVAEModel(tiny_config("image", quantizer=quantizer_type)).to(torch.bfloat16).train()
    with pytest.raises(TypeError, match="codebook is torch.bfloat16.*float32.*autocast"):
        model(tiny_inputs("image").bfloat16())


def test_kmeans_init_runs_once_and_initialized_flag_persists(tmp_path):
    model = VQVAEModel(tiny_config("image", kmeans_init=True))
    assert not model.quantizer.initialized
    inputs = tiny_inputs("image")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        model(inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert model.quantizer.initialized
    model.save_pretrained(tmp_path)
    reloaded = VQVAEModel.from_pretrained(tmp_path)
    for (name, tensor), other in zip(model.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(tensor, other), name
    reloaded.quantizer._kmeans_init = lambda flat: pytest.fail("k-means ran again after reload")
    reloaded.train()(inputs)


def test_kmeans_init_finds_well_separated_clusters():
    quantizer = VectorQuantizer(
        tiny_config("image", codebook_size=4, kmeans_init=True, dead_code_threshold=0.0)
    )
    centers = torch.tensor([[10.0] * 8, [-10.0] * 8, [10.0] * 4 + [-10.0] * 4, [-10.0] * 4 + [10.0] * 4])
    points = centers.repeat(16, 1) + 0.01 * torch.randn(64, 8)
    quantizer.train()(points.T.reshape(1, 8, 8, 8))
    found = quantizer.codebook.detach()
    assert torch.cdist(centers, found).min(1).values.max() < 0.1


def test_eval_mode_never_changes_quantizer_state():
    model = VQVAEModel(tiny_config("image", dead_code_threshold=100.0)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model(tiny_inputs("image"))
    model.encode(tiny_inputs("image", seed=1))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_no_nan_for_huge_latents_and_long_unused_codes():
    quantizer = make_quantizer(quantizer="ema").train()
    latents = torch.randn(1, 8, 4, 4) * 1e4
    for _ in range(3000):
        output = quantizer(latents)
    state = [
        output.commitment_loss,
        output.perplexity,
        quantizer.codebook,
        quantizer.cluster_size,
        quantizer.embed_sum,
    ]
    assert all(torch.isfinite(t).all() for t in state)
    assert (
        quantizer.cluster_size > 0
    ).all()  # never-used codes decay toward 0 without reaching a 0 denominator
    distances = torch.addmm(
        quantizer.codebook.pow(2).sum(1), latents[0].flatten(1).T, quantizer.codebook.T, alpha=-2.0
    ) + latents[0].flatten(1).T.pow(2).sum(1, keepdim=True)
    assert torch.isfinite(distances).all()


@pytest.mark.parametrize("quantizer_type", ["vq", "ema"])
def test_bf16_autocast_step_keeps_fp32_state_and_same_codes(quantizer_type):
    model = VQVAEModel(tiny_config("image", quantizer=quantizer_type, kmeans_init=False))
    latents = torch.randn(4, 8, 4, 4)
    reference = make_reference_codes(model.quantizer, latents)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model.quantizer.train()(latents)
        model(tiny_inputs("image")).loss.backward()
    assert torch.equal(output.codes, reference)
    assert all(t.dtype != torch.bfloat16 for t in model.quantizer.state_dict().values())
    assert model.quantizer.codebook.dtype == torch.float32


def make_reference_codes(quantizer: VectorQuantizer, latents: torch.Tensor) -> torch.Tensor:
    flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    return torch.cdist(flat, quantizer.codebook.detach().double()).argmin(1).view(latents.shape[0], 4, 4)
