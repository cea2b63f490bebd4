"""Real bitstreams: a VQ-VAE and its prior as a codec. `compress` encodes an input to codes and entropy-codes them
with the prior's conditional distributions (a range coder, `constriction`); `decompress` decodes the codes back
with the same distributions and decodes them with the VQ-VAE.

The decoder must see exactly the encoder's probabilities. Both run the prior's cached sampler over one grid at a
time (`VQPriorModel.generate_with`), on one thread, so that the logits do not depend on a batch size or a thread
count; the file names the models it was made with (a fingerprint of their weights), so that other weights are
refused rather than decoded into noise.

File layout (little-endian), format version 1:

| bytes | field |
|---|---|
| 4 | magic `HFVQ` |
| 1 | format version |
| 1 | modality (0 image, 1 audio, 2 video) |
| 4 | model fingerprint: the first 4 bytes of SHA-256 over the VQ-VAE's and the prior's weights (float32) |
| 2 | class label, -1 for none (int16) |
| 1 + 2n | code grid: n axes, then each axis's size (uint16) |
| 4k | payload: the range coder's k 32-bit words |
| 4 | CRC-32 of everything before it |

The header and checksum take 17 + 2n bytes (21 for an 8x8 grid).
"""

import hashlib
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..models.prior.modeling_prior import VQPriorModel
from ..models.vqvae.modeling_vqvae import VQVAEModel

MAGIC = b"HFVQ"
FORMAT_VERSION = 1
MODALITY_IDS = {"image": 0, "audio": 1, "video": 2}
_FIXED = struct.Struct("<4sBB4sh")
_LENGTH = struct.Struct("<I")


class CompressedFileError(ValueError):
    """A compressed file that cannot be decoded: damaged, truncated, of another format version, or made by
    another model."""


@dataclass(frozen=True)
class CompressedHeader:
    """What a compressed file says about itself."""

    version: int
    modality: str
    fingerprint: bytes
    class_label: int | None
    code_shape: tuple[int, ...]


def range_coder():
    """`constriction` (the `compression` extra), imported when a file is coded."""
    try:
        import constriction
    except ImportError as error:
        raise ImportError(
            "Compression needs the constriction entropy coder: pip install 'hf_vqvae[compression]'."
        ) from error
    return constriction


def model_fingerprint(vqvae: VQVAEModel, prior: VQPriorModel) -> bytes:
    """4 bytes that change with any weight of either model (the same for a model loaded in another dtype)."""
    digest = hashlib.sha256()
    for model in (vqvae, prior):
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.digest()[:4]


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread while coding: the logits, and so the code's probabilities, then do not depend on the
    caller's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def code_probabilities(logits: torch.FloatTensor) -> np.ndarray:
    """The coder's model of one position: float64 probabilities from fp32 logits, computed the same way on both
    sides (numpy, not a threaded kernel)."""
    values = logits.double().cpu().numpy()[0]
    values = np.exp(values - values.max())
    return values / values.sum()


def conditioning(prior: VQPriorModel, class_label: int | None) -> tuple[int | None, float]:
    """The label and guidance scale the coder runs the prior with: the class's own distribution (scale 1), or,
    for a conditional prior coding without a label, its unconditional distribution (a learned null label, or the
    mixture of its classes): scale 0, under which the label passed along has no weight."""
    if class_label is None and prior.config.num_classes:
        return 0, 0.0
    return class_label, 1.0


@torch.no_grad()
def compress(
    vqvae: VQVAEModel, prior: VQPriorModel, inputs: torch.Tensor, class_label: int | None = None
) -> bytes:
    """
    Compress one example.

    Args:
        inputs (`torch.Tensor`): one model input without the batch axis, in [-1, 1] (an image `(C, H, W)`, a
            window of audio `(C, T)`, a clip `(T, C, H, W)`), as the model's processor gives it.
        class_label (`int`, *optional*): the class the prior is conditioned on (stored in the file).

    Returns:
        `bytes`: the file's contents.
    """
    constriction = range_coder()
    prior.config.check_matches(vqvae.config)
    codes = vqvae.encode(inputs[None].to(vqvae.device, vqvae.dtype)).codes[0].flatten().tolist()
    encoder = constriction.stream.queue.RangeEncoder()
    position = iter(range(len(codes)))

    def encode_next(logits: torch.FloatTensor) -> torch.LongTensor:
        code = codes[next(position)]
        encoder.encode(code, constriction.stream.model.Categorical(code_probabilities(logits), perfect=False))
        return torch.tensor([code], device=logits.device)

    with one_thread():
        prior.generate_with(encode_next, *conditioning(prior, class_label))
    payload = encoder.get_compressed().astype("<u4").tobytes()
    header = CompressedHeader(
        FORMAT_VERSION,
        vqvae.config.modality,
        model_fingerprint(vqvae, prior),
        class_label,
        tuple(prior.config.code_shape),
    )
    body = write_header(header) + payload
    return body + _LENGTH.pack(zlib.crc32(body))


@torch.no_grad()
def decompress(vqvae: VQVAEModel, prior: VQPriorModel, data: bytes) -> torch.Tensor:
    """
    Decompress one file made by [`compress`] with the same models.

    Returns:
        `torch.Tensor`: the decoded example without the batch axis, in [-1, 1].

    Raises:
        CompressedFileError: a damaged or truncated file, another format version, or another model's file.
    """
    constriction = range_coder()
    header, payload = split_file(data)
    if header.fingerprint != model_fingerprint(vqvae, prior):
        raise CompressedFileError(
            "This file was compressed with other model weights (its fingerprint "
            f"{header.fingerprint.hex()} is not this model's {model_fingerprint(vqvae, prior).hex()}); decompress "
            "it with the model that made it."
        )
    if header.modality != vqvae.config.modality or header.code_shape != tuple(prior.config.code_shape):
        raise CompressedFileError(
            f"This file holds a {header.modality} code grid {list(header.code_shape)}, this model makes "
            f"{vqvae.config.modality} grids {list(prior.config.code_shape)}."
        )
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))

    def decode_next(logits: torch.FloatTensor) -> torch.LongTensor:
        model = constriction.stream.model.Categorical(code_probabilities(logits), perfect=False)
        return torch.tensor([int(decoder.decode(model))], device=logits.device)

    with one_thread():
        codes = prior.generate_with(decode_next, *conditioning(prior, header.class_label))
    return vqvae.decode(codes.to(vqvae.device))[0].float().clamp(-1, 1).cpu()


def write_header(header: CompressedHeader) -> bytes:
    label = -1 if header.class_label is None else header.class_label
    fixed = _FIXED.pack(MAGIC, header.version, MODALITY_IDS[header.modality], header.fingerprint, label)
    shape = struct.pack(f"<B{len(header.code_shape)}H", len(header.code_shape), *header.code_shape)
    return fixed + shape


def split_file(data: bytes) -> tuple[CompressedHeader, bytes]:
    """The header and payload of a compressed file, after checking its magic, version, length and checksum."""
    if len(data) < _FIXED.size + 1 + _LENGTH.size or data[:4] != MAGIC:
        raise CompressedFileError("Not an hf_vqvae compressed file (no HFVQ header, or too short).")
    magic, version, modality_id, fingerprint, label = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CompressedFileError(
            f"This file has format version {version}; this hf_vqvae reads version {FORMAT_VERSION}"
            f"{' (a newer hf_vqvae made it)' if version > FORMAT_VERSION else ''}."
        )
    (checksum,) = _LENGTH.unpack_from(data, len(data) - _LENGTH.size)
    if zlib.crc32(data[: -_LENGTH.size]) != checksum:
        raise CompressedFileError("The file is damaged or truncated (its CRC-32 does not match).")
    num_axes = data[_FIXED.size]
    offset = _FIXED.size + 1 + 2 * num_axes
    if len(data) < offset + _LENGTH.size:
        raise CompressedFileError("The file is damaged or truncated (shorter than its header).")
    code_shape = struct.unpack_from(f"<{num_axes}H", data, _FIXED.size + 1)
    payload = data[offset : -_LENGTH.size]
    if len(payload) % 4:
        raise CompressedFileError("The file is damaged or truncated (its payload is not whole 32-bit words).")
    modality = {value: key for key, value in MODALITY_IDS.items()}.get(modality_id)
    if modality is None:
        raise CompressedFileError(f"Unknown modality id {modality_id} in the header.")
    header = CompressedHeader(version, modality, fingerprint, None if label < 0 else label, tuple(code_shape))
    return header, payload


def read_header(data: bytes) -> CompressedHeader:
    """The header of a compressed file (checked as `decompress` checks it)."""
    return split_file(data)[0]


__all__ = [
    "CompressedFileError",
    "CompressedHeader",
    "compress",
    "decompress",
    "model_fingerprint",
    "read_header",
]
