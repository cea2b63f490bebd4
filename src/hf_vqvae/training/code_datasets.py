"""Datasets of code grids: a frozen VQ-VAE encodes a dataset once, and the result is cached as a `datasets` dataset
so that later prior runs (and every process of a distributed run) reuse it."""

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from tqdm.auto import tqdm

from ..data import LABEL_KEY
from ..models.vqvae.modeling_vqvae import VQVAEModel
from .checkpointing import state_dict_fingerprint

logger = logging.getLogger(__name__)


def codes_fingerprint(vqvae: VQVAEModel, data_description: dict) -> str:
    """A key that changes whenever the VQ-VAE's weights or the data (source, split, preprocessing) change."""
    digest = hashlib.sha256(json.dumps(data_description, sort_keys=True, default=str).encode())
    digest.update(json.dumps(vqvae.config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(state_dict_fingerprint(vqvae).encode())
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode_batches(vqvae: VQVAEModel, batches: Iterable[dict], description: str = "encoding") -> Dataset:
    """Encode every batch with the frozen VQ-VAE; returns a dataset with `codes` (int16 grids) and `class_labels`."""
    vqvae.eval()
    codes, labels = [], []
    for batch in tqdm(batches, desc=description):
        inputs = batch[vqvae.main_input_name].to(vqvae.device)
        codes.append(vqvae.encode(inputs).codes.cpu())
        if LABEL_KEY in batch:
            labels.append(batch[LABEL_KEY].cpu())
    if not codes:
        raise ValueError(f"Nothing to encode for {description}: the dataset is empty.")
    # int16 holds any codebook of up to 32,768 codes and halves the cache.
    dtype = np.int16 if vqvae.config.codebook_size <= 2**15 else np.int32
    columns = {"codes": torch.cat(codes).numpy().astype(dtype)}
    if labels:
        columns[LABEL_KEY] = torch.cat(labels).numpy()
    return Dataset.from_dict(columns).with_format("torch")


def load_or_encode_codes(
    cache_dir: str | Path, fingerprint: str, encode_splits: dict, is_main_process: bool = True
) -> DatasetDict:
    """Load the cached code datasets for `fingerprint`, or build them with `encode_splits` (split -> callable
    returning a `Dataset`) and cache them. Call under `accelerator.main_process_first()` so that only the main
    process encodes. Separate runs started together (two fine-tunes side by side) may both encode: each writes
    its own folder, and the one that finishes second keeps the first one's identical cache."""
    path = Path(cache_dir) / fingerprint
    if (path / "dataset_dict.json").exists():
        logger.info("Reusing cached codes from %s", path)
        return load_from_disk(str(path)).with_format("torch")
    # Iterating a DataLoader draws from the global RNG; keep the run identical whether or not the cache was hit.
    with torch.random.fork_rng(devices=[]):
        codes = DatasetDict({split: encode() for split, encode in encode_splits.items()})
    if is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{path.name}.partial-", dir=path.parent))
        try:
            codes.save_to_disk(str(partial))
            partial.rename(path)  # complete or absent, never half-written
            logger.info("Cached codes in %s", path)
        except OSError:
            if not (path / "dataset_dict.json").exists():
                raise
            logger.info("Another run cached the same codes in %s first; keeping those", path)
        finally:
            shutil.rmtree(partial, ignore_errors=True)  # gone after the rename; a failed write leaves nothing
    return codes
