# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The vector quantizer: nearest-code search, the paper's losses, EMA codebook updates, dead-code restarts and
k-means initialisation, synchronised across processes under `torch.distributed`.

Everything here computes in fp32, whatever the autocast state or the dtype of the latents: low-precision distances
pick wrong codes (and leave much of the codebook unused), and bf16 EMA sums drift.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .configuration_vqvae import VQVAEConfig

# A code is dead when its usage per step falls under `dead_code_threshold` or under the average code's usage
# divided by this, whichever is lower (see `VectorQuantizer._restart_dead_codes`).
DEAD_CODE_USAGE_DIVISOR = 8


@dataclass
class QuantizerOutput(ModelOutput):
    """
    Args:
        quantized (`torch.FloatTensor` of shape `(batch, embedding_dim, *grid)`):
            The code vectors of the latents, with straight-through gradients to the latents, in their dtype.
        codes (`torch.LongTensor` of shape `(batch, *grid)`):
            Index of the nearest code for every latent vector.
        codebook_loss (`torch.FloatTensor` of shape `()`):
            ||sg[z_e] - e||^2, which trains the codebook (`quantizer="vq"`); zero for the EMA codebook.
        commitment_loss (`torch.FloatTensor` of shape `()`):
            ||z_e - sg[e]||^2, unweighted; the model multiplies it by `commitment_cost`.
        perplexity (`torch.FloatTensor` of shape `()`):
            exp(entropy) of the code usage in this batch (over all processes while training).
    """

    quantized: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    perplexity: torch.FloatTensor | None = None


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` in place over all processes (a no-op in a single process)."""
    if _is_distributed():
        dist.all_reduce(tensor)
    return tensor


def all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate the `(n_rank, D)` rows of every process in rank order; `n_rank` may differ between ranks.

    Tensors are padded to the largest row count so that every rank sends equal-size tensors (gloo and NCCL require
    it), then the padding is dropped.
    """
    if not _is_distributed():
        return rows
    world_size = dist.get_world_size()
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world_size)]
    dist.all_gather(counts, count)
    max_count = int(max(c.item() for c in counts))
    padded = rows.new_zeros(max_count, rows.shape[1])
    padded[: rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(c.item())] for g, c in zip(gathered, counts, strict=True)])


def nearest_codes(vectors: torch.Tensor, codebook: torch.Tensor, max_distances: int = 2**24) -> torch.Tensor:
    """Index of the nearest code (squared Euclidean distance) for each row of `vectors`.

    The `(N, K)` distance matrix is built `max_distances // K` rows at a time, so memory stays bounded for large
    codebooks and batches; every row sees exactly the arithmetic of the full search, so the result is identical.

    Args:
        vectors (`torch.FloatTensor` of shape `(N, D)`): fp32 vectors to quantize.
        codebook (`torch.FloatTensor` of shape `(K, D)`): fp32 code vectors.
        max_distances (`int`): the most distances held in memory at once.

    Returns:
        `torch.LongTensor` of shape `(N,)`.
    """
    codebook_sq = codebook.pow(2).sum(1)
    rows_per_chunk = max(1, max_distances // codebook.shape[0])
    codes = [
        # ||z||^2 is the same for every code of a row, so the argmin does not need it.
        torch.addmm(codebook_sq, chunk, codebook.t(), alpha=-2.0).argmin(dim=1)
        for chunk in vectors.split(rows_per_chunk)
    ]
    return torch.cat(codes) if codes else vectors.new_zeros(0, dtype=torch.long)


def sum_by_code(vectors: torch.Tensor, codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Sum of the `(N, D)` vectors assigned to each code, `(K, D)`.

    `index_put_(accumulate=True)` measured ~10x faster than `index_add_` on CPU for (8192, 64) -> (512, 64).
    """
    sums = vectors.new_zeros(codebook_size, vectors.shape[1])
    return sums.index_put_((codes,), vectors, accumulate=True)


def batch_perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of one batch's code counts `(K,)` (see `metrics.codebook_perplexity`), computed without that
    function's input checks, whose branches on values would break a compiled or exported graph."""
    probabilities = counts.double() / counts.sum()
    return torch.exp(-torch.special.xlogy(probabilities, probabilities).sum()).float()


class VectorQuantizer(nn.Module):
    """Maps encoder outputs to their nearest codebook vectors (van den Oord et al., 2017), and learns the codebook.

    A small state machine, with each step only in training mode so that a frozen model's state never moves:
    k-means initialisation on the first batch (guarded by the persistent `initialized` flag), then per step the
    nearest-code search, the losses, the usage statistics (EMA of assignments per step), the EMA codebook update
    (`quantizer="ema"`, Sonnet's `VectorQuantizerEMA` with Laplace-smoothed counts) and dead-code restarts.
    Statistics are summed over processes before they are used, so every rank holds the identical codebook.

    Buffers (all persistent, so a saved model resumes exactly): `cluster_size` (K,) EMA of assignments per step;
    `embed_sum` (K, D) EMA of the sum of assigned vectors (EMA codebook only); `initialized` (k-means done);
    `num_restarts` (codes restarted so far).
    """

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.embedding_dim = config.embedding_dim
        self.use_ema = config.quantizer == "ema"
        self.decay = config.ema_decay
        self.epsilon = config.ema_epsilon
        self.dead_code_threshold = config.dead_code_threshold
        self.kmeans_init = config.kmeans_init
        self.kmeans_iters = config.kmeans_iters
        self.max_distances = config.search_chunk_size

        self.embedding = nn.Embedding(config.codebook_size, config.embedding_dim)
        # The EMA codebook is learned by moving averages, never by gradients.
        self.embedding.weight.requires_grad_(not self.use_ema)
        self.register_buffer("cluster_size", torch.ones(config.codebook_size))
        if self.use_ema:
            self.register_buffer("embed_sum", torch.zeros(config.codebook_size, config.embedding_dim))
        self.register_buffer("initialized", torch.tensor(not self.kmeans_init))
        self.register_buffer("num_restarts", torch.tensor(0, dtype=torch.long))

    @property
    def codebook(self) -> torch.Tensor:
        """The code vectors, `(K, D)`."""
        return self.embedding.weight

    def forward(self, latents: torch.Tensor) -> QuantizerOutput:
        """Quantize channel-first latents `(batch, embedding_dim, *grid)`."""
        grid = latents.shape[2:]
        if self.training and self.codebook.dtype != torch.float32:
            raise TypeError(
                f"The quantizer's codebook is {self.codebook.dtype}, but training it needs float32 (low-precision "
                "EMA sums drift). Keep the model in float32 and train under autocast (Accelerate's "
                "`mixed_precision='bf16'`), or load it with `from_pretrained(..., dtype=...)`, which keeps the "
                "quantizer in float32."
            )
        with torch.autocast(device_type=latents.device.type, enabled=False):
            flat = torch.movedim(latents, 1, -1).reshape(-1, latents.shape[1]).float()  # (b * grid, d)
            codebook = self.codebook.float()
            if self.training and not self.initialized:
                self._kmeans_init(flat.detach())
            codes = nearest_codes(flat.detach(), codebook, self.max_distances)
            quantized = F.embedding(codes, codebook)
            # Paper loss: the codebook term moves codes toward encoder outputs, the commitment term (weighted by
            # beta in the model) keeps the encoder close to its codes.
            codebook_loss = F.mse_loss(quantized, flat.detach()) if not self.use_ema else flat.new_zeros(())
            commitment_loss = F.mse_loss(flat, quantized.detach())
            counts = torch.bincount(codes, minlength=self.codebook_size).float()
            if self.training:
                counts = self._update_codebook(flat.detach(), codes, counts)
            # Straight-through estimator: the forward pass uses the code, the backward pass copies the gradient.
            quantized = flat + (quantized - flat).detach()
        return QuantizerOutput(
            quantized=torch.movedim(quantized.to(latents.dtype).view(latents.shape[0], *grid, -1), -1, 1),
            codes=codes.view(latents.shape[0], *grid),
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=batch_perplexity(counts),
        )

    def lookup(self, codes: torch.LongTensor) -> torch.Tensor:
        """Code vectors of a code grid `(batch, *grid)`, channel-first: `(batch, embedding_dim, *grid)`."""
        vectors = F.embedding(codes, self.codebook.float())
        return torch.movedim(vectors, -1, 1)

    @torch.no_grad()
    def _update_codebook(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """One training step of codebook state; returns the code counts summed over processes."""
        counts = all_reduce_sum(counts)
        if self.use_ema:
            sums = all_reduce_sum(sum_by_code(flat, codes, self.codebook_size))
            self.embed_sum.lerp_(sums, 1 - self.decay)
        self.cluster_size.lerp_(counts, 1 - self.decay)
        if self.use_ema:
            self.codebook.copy_(self.embed_sum / self._smoothed_cluster_size().unsqueeze(1))
        if self.dead_code_threshold > 0:
            self._restart_dead_codes(flat, counts)
        return counts

    def _smoothed_cluster_size(self) -> torch.Tensor:
        # Laplace smoothing keeps every denominator >= epsilon-ish while preserving the total count, so codes that
        # nothing picked for thousands of steps never divide by zero.
        total = self.cluster_size.sum()
        return (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total

    def _restart_dead_codes(self, flat: torch.Tensor, counts: torch.Tensor) -> None:
        """Re-seed codes whose usage fell under the threshold with encoder outputs of this step, from all ranks.

        The threshold counts assignments per step, so a step with few latent vectors per code (a small batch)
        would find healthy codes under it and restart them at every step, wiping out a trained codebook. It is
        therefore capped at 1/8 of the average code's usage, which leaves the usual configurations (8 or more
        latent vectors per code and step at the default threshold of 1) unchanged.
        """
        mean_usage = counts.sum() / self.codebook_size
        threshold = (mean_usage / DEAD_CODE_USAGE_DIVISOR).clamp(max=self.dead_code_threshold)
        dead = (self.cluster_size < threshold).nonzero().squeeze(1)
        # `cluster_size` is identical on every rank, so either all ranks enter the collective below or none does.
        if dead.numel() == 0:
            return
        local = flat[torch.randperm(flat.shape[0], device=flat.device)[: dead.numel()]]
        candidates = all_gather_rows(local)
        # Every rank draws the same permutation (seeded by shared state), so all ranks pick the same candidates.
        generator = torch.Generator(device="cpu").manual_seed(int(self.num_restarts) + candidates.shape[0])
        order = torch.randperm(candidates.shape[0], generator=generator).to(candidates.device)
        dead = dead[: order.numel()]
        chosen = candidates[order[: dead.numel()]]
        # A restart resets vector, count and sum together; otherwise the next EMA step would pull the code back.
        # Starting at the average usage, 8x the capped threshold, a restarted code that nothing picks stays
        # alive for about 200 steps (at decay 0.99) before it is restarted again.
        fresh_count = mean_usage
        self.codebook[dead] = chosen.to(self.codebook.dtype)
        self.cluster_size[dead] = fresh_count
        if self.use_ema:
            self.embed_sum[dead] = chosen * fresh_count
        self.num_restarts += dead.numel()

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """Lloyd's k-means on the first batch (gathered from all ranks), as the starting codebook."""
        data = all_gather_rows(flat)
        generator = torch.Generator(device="cpu").manual_seed(0)
        replace = data.shape[0] < self.codebook_size
        if replace:
            start = torch.randint(data.shape[0], (self.codebook_size,), generator=generator)
        else:
            start = torch.randperm(data.shape[0], generator=generator)[: self.codebook_size]
        centroids = data[start.to(data.device)]
        for _ in range(self.kmeans_iters):
            codes = nearest_codes(data, centroids, self.max_distances)
            counts = torch.bincount(codes, minlength=self.codebook_size).float()
            sums = sum_by_code(data, codes, self.codebook_size)
            # Empty clusters keep their previous centroid instead of collapsing to the origin.
            centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        counts = torch.bincount(
            nearest_codes(data, centroids, self.max_distances), minlength=self.codebook_size
        )
        # Per-step usage scale: the gathered batch spans all ranks, like the all-reduced counts of a step.
        cluster_size = counts.float().clamp(min=1.0)
        self.codebook.copy_(centroids.to(self.codebook.dtype))
        self.cluster_size.copy_(cluster_size)
        if self.use_ema:
            self.embed_sum.copy_(centroids * cluster_size[:, None])
        self.initialized.fill_(True)
