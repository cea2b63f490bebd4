# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Real bitstreams: a VQ-VAE and its prior as a codec. `compress` encodes an input to codes and entropy-codes them
with the prior's conditional distributions (a range coder, `constriction`); `decompress` decodes the codes back
with the same distributions and decodes them with the VQ-VAE.

The decoder must see exactly the encoder's probabilities. Both run the prior's cached sampler over batches of
exactly `CODING_BATCH` grids (padded; `VQPriorModel.generate_with`), on one thread, so that the logits do not
depend on how many files are coded together or on a thread count. The file names the models it was made with (a
fingerprint of their weights), so that other weights are refused rather than decoded into noise.

File layout (little-endian), format version 2:

| bytes | field |
|---|---|
| 4 | magic `HFVQ` |
| 1 | format version |
| 1 | modality (0 image, 1 audio, 2 video) |
| 4 | model fingerprint: the first 4 bytes of SHA-256 over the VQ-VAE's and the prior's weights (float32) |
| 2 | class label, -1 for none (int16) |
| 2 | speaker the decoder speaks with, -1 for a VQ-VAE without speakers (int16) |
| 1 + 2n | code grid: n axes, then each axis's size (uint16) |
| k | payload: the range coder's output, big-endian, cut to its shortest form (`shortest_payload`) |
| 4 | CRC-32 of everything before it |

The header and checksum take 19 + 2n bytes (23 for an 8x8 grid). Version 1 (still read) stored the coder's whole
32-bit words, little-endian: about 2 bytes more per file.
"""

import hashlib
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .modeling_prior import VQPriorModel
from .modeling_vqvae import VQVAEModel
from .range_coding import (
    InvalidPayloadError,
    code_probabilities,
    decode_codes,
    padded_words,
    range_coder,
    shortest_payload,
)

MAGIC = b"HFVQ"
FORMAT_VERSION = 2
# Version 1 payloads were whole 32-bit little-endian words; still read.
WORD_PAYLOAD_VERSION = 1
MODALITY_IDS = {"image": 0, "audio": 1, "video": 2}
# Grids coded at once: always this many rows (padded), so that the logits, and the decoder's probabilities, do not
# depend on how many files are coded together.
CODING_BATCH = 64
_FIXED = struct.Struct("<4sBB4shh")
_CHECKSUM = struct.Struct("<I")


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
    speaker_id: int | None = None


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


def conditioning(prior: VQPriorModel, class_labels: list[int] | None) -> tuple[list[int] | None, float]:
    """The labels and guidance scale the coder runs the prior with: each class's own distribution (scale 1), or,
    for a conditional prior coding without labels, its unconditional distribution (a learned null label, or the
    mixture of its classes): scale 0, under which the labels passed along have no weight."""
    if class_labels is None and prior.config.num_classes:
        return [0] * CODING_BATCH, 0.0
    return class_labels, 1.0


def run_coder(prior: VQPriorModel, choose_next, class_labels: list[int | None]) -> torch.LongTensor:
    """The prior's sampler over one coding batch (`CODING_BATCH` rows, always), with `choose_next` deciding the
    codes: a fixed batch shape keeps every row's logits the same whatever the number of files."""
    labels = None if class_labels[0] is None else class_labels + [0] * (CODING_BATCH - len(class_labels))
    labels, scale = conditioning(prior, labels)
    with one_thread():
        return prior.generate_with(choose_next, CODING_BATCH, labels, scale)


@torch.no_grad()
def compress(
    vqvae: VQVAEModel,
    prior: VQPriorModel,
    inputs: torch.Tensor,
    class_label: int | None = None,
    speaker_id: int | None = None,
) -> bytes:
    """
    Compress one example (see [`compress_many`]).

    Args:
        inputs (`torch.Tensor`): one model input without the batch axis, in [-1, 1] (an image `(C, H, W)`, a
            window of audio `(C, T)`, a clip `(T, C, H, W)`), as the model's processor gives it.
        class_label (`int`, *optional*): the class the prior is conditioned on (stored in the file).
        speaker_id (`int`, *optional*): a VQ-VAE with speakers: the voice the file decodes with (stored in the
            file; default speaker 0).

    Returns:
        `bytes`: the file's contents.
    """
    return compress_many(vqvae, prior, inputs[None], class_label, speaker_id)[0]


@torch.no_grad()
def compress_many(
    vqvae: VQVAEModel,
    prior: VQPriorModel,
    inputs: torch.Tensor,
    class_label: int | None = None,
    speaker_ids: int | list[int] | None = None,
) -> list[bytes]:
    """One file per example of a batch `(N, ...)` of model inputs, coded `CODING_BATCH` at a time; `speaker_ids`:
    one speaker for all files or one per file (a VQ-VAE with speakers; default the first)."""
    # Fails with the install hint before any encoding when the compression extra is missing.
    range_coder()
    prior.config.check_matches(vqvae.config)
    if not vqvae.config.num_speakers:
        speakers = [None] * len(inputs)
    else:
        speakers = speaker_ids if isinstance(speaker_ids, list) else [speaker_ids or 0] * len(inputs)
    fingerprint = model_fingerprint(vqvae, prior)
    headers = [
        write_header(
            CompressedHeader(
                FORMAT_VERSION,
                vqvae.config.modality,
                fingerprint,
                class_label,
                tuple(prior.config.code_shape),
                speaker,
            )
        )
        for speaker in speakers
    ]
    files = []
    for chunk in inputs.split(CODING_BATCH):
        codes = vqvae.encode(chunk.to(vqvae.device, vqvae.dtype)).codes.flatten(1).cpu()
        position = iter(range(codes.shape[1]))
        tables = np.empty((len(chunk), codes.shape[1], prior.config.codebook_size))

        def record_next(logits: torch.FloatTensor, codes=codes, position=position, tables=tables):
            step = next(position)
            tables[:, step] = code_probabilities(logits)[: len(codes)]
            chosen = torch.zeros(len(logits), dtype=torch.long)
            chosen[: len(codes)] = codes[:, step]
            return chosen.to(logits.device)

        run_coder(prior, record_next, [class_label] * len(chunk))
        for row in range(len(chunk)):
            body = headers[len(files)] + shortest_payload(codes[row].numpy(), tables[row])
            files.append(body + _CHECKSUM.pack(zlib.crc32(body)))
    return files


@torch.no_grad()
def decompress(vqvae: VQVAEModel, prior: VQPriorModel, data: bytes) -> torch.Tensor:
    """
    Decompress one file made by [`compress`] with the same models (see [`decompress_many`]).

    Returns:
        `torch.Tensor`: the decoded example without the batch axis, in [-1, 1].

    Raises:
        CompressedFileError: a damaged or truncated file, another format version, or another model's file.
    """
    return decompress_many(vqvae, prior, [data])[0]


@torch.no_grad()
def decompress_many(vqvae: VQVAEModel, prior: VQPriorModel, files: list[bytes]) -> torch.Tensor:
    """The examples `(N, ...)` that files made by [`compress`] / [`compress_many`] hold, `CODING_BATCH` at a
    time (files with and without a class label in separate batches)."""
    constriction = range_coder()
    fingerprint = model_fingerprint(vqvae, prior)
    parsed = [checked_file(vqvae, prior, data, fingerprint) for data in files]
    decoded = [None] * len(files)
    for has_label in (False, True):
        indices = [i for i, (header, _) in enumerate(parsed) if (header.class_label is not None) == has_label]
        for start in range(0, len(indices), CODING_BATCH):
            chunk = indices[start : start + CODING_BATCH]
            decoders = [constriction.stream.queue.RangeDecoder(payload_words(*parsed[i])) for i in chunk]

            def decode_next(logits: torch.FloatTensor, decoders=decoders, chunk=chunk) -> torch.LongTensor:
                tables = code_probabilities(logits)
                chosen = torch.zeros(len(logits), dtype=torch.long)
                for row, decoder in enumerate(decoders):
                    try:
                        chosen[row] = int(decode_codes(decoder, tables[row : row + 1])[0])
                    except InvalidPayloadError as error:
                        raise CompressedFileError(
                            f"File {chunk[row]} is damaged: its payload does not decode under this model, though "
                            "its checksum matches."
                        ) from error
                return chosen.to(logits.device)

            codes = run_coder(prior, decode_next, [parsed[i][0].class_label for i in chunk])[: len(chunk)]
            speakers = [parsed[i][0].speaker_id for i in chunk]
            speaker_ids = torch.tensor(speakers, device=vqvae.device) if vqvae.config.num_speakers else None
            outputs = vqvae.decode(codes.to(vqvae.device), speaker_ids=speaker_ids).float().clamp(-1, 1).cpu()
            for row, index in enumerate(chunk):
                decoded[index] = outputs[row]
    return torch.stack(decoded)


def checked_file(
    vqvae: VQVAEModel, prior: VQPriorModel, data: bytes, fingerprint: bytes
) -> tuple[CompressedHeader, bytes]:
    """A file's header and payload, checked against the models that are to decode it (`fingerprint`: theirs)."""
    header, payload = split_file(data)
    if header.fingerprint != fingerprint:
        raise CompressedFileError(
            f"This file was compressed with other model weights (its fingerprint {header.fingerprint.hex()} is not "
            f"this model's {fingerprint.hex()}); decompress it with the model that made it."
        )
    speakers = vqvae.config.num_speakers
    if (header.speaker_id is None) != (not speakers) or (speakers and header.speaker_id >= speakers):
        raise CompressedFileError(
            f"This file's speaker {header.speaker_id} does not fit this VQ-VAE ({speakers} speakers)."
        )
    if header.modality != vqvae.config.modality or header.code_shape != tuple(prior.config.code_shape):
        raise CompressedFileError(
            f"This file holds a {header.modality} code grid {list(header.code_shape)}, this model makes "
            f"{vqvae.config.modality} grids {list(prior.config.code_shape)}."
        )
    return header, payload


def payload_words(header: CompressedHeader, payload: bytes) -> np.ndarray:
    """The range decoder's words of a file's payload, as its format version stores them."""
    if header.version == WORD_PAYLOAD_VERSION:
        return np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    return padded_words(payload)


def write_header(header: CompressedHeader) -> bytes:
    label = -1 if header.class_label is None else header.class_label
    speaker = -1 if header.speaker_id is None else header.speaker_id
    fixed = _FIXED.pack(
        MAGIC, header.version, MODALITY_IDS[header.modality], header.fingerprint, label, speaker
    )
    shape = struct.pack(f"<B{len(header.code_shape)}H", len(header.code_shape), *header.code_shape)
    return fixed + shape


def split_file(data: bytes) -> tuple[CompressedHeader, bytes]:
    """The header and payload of a compressed file, after checking its magic, version, length and checksum."""
    if len(data) < _FIXED.size + 1 + _CHECKSUM.size or data[:4] != MAGIC:
        raise CompressedFileError("Not an hf_vqvae compressed file (no HFVQ header, or too short).")
    magic, version, modality_id, fingerprint, label, speaker = _FIXED.unpack_from(data)
    if version not in (WORD_PAYLOAD_VERSION, FORMAT_VERSION):
        raise CompressedFileError(
            f"This file has format version {version}; this hf_vqvae reads versions {WORD_PAYLOAD_VERSION} and "
            f"{FORMAT_VERSION}"
            f"{' (a newer hf_vqvae made it)' if version > FORMAT_VERSION else ''}."
        )
    (checksum,) = _CHECKSUM.unpack_from(data, len(data) - _CHECKSUM.size)
    if zlib.crc32(data[: -_CHECKSUM.size]) != checksum:
        raise CompressedFileError("The file is damaged or truncated (its CRC-32 does not match).")
    num_axes = data[_FIXED.size]
    offset = _FIXED.size + 1 + 2 * num_axes
    if len(data) < offset + _CHECKSUM.size:
        raise CompressedFileError("The file is damaged or truncated (shorter than its header).")
    code_shape = struct.unpack_from(f"<{num_axes}H", data, _FIXED.size + 1)
    payload = data[offset : -_CHECKSUM.size]
    if version == WORD_PAYLOAD_VERSION and len(payload) % 4:
        raise CompressedFileError("The file is damaged or truncated (its payload is not whole 32-bit words).")
    modality = {value: key for key, value in MODALITY_IDS.items()}.get(modality_id)
    if modality is None:
        raise CompressedFileError(f"Unknown modality id {modality_id} in the header.")
    header = CompressedHeader(
        version,
        modality,
        fingerprint,
        None if label < 0 else label,
        tuple(code_shape),
        None if speaker < 0 else speaker,
    )
    return header, payload


def read_header(data: bytes) -> CompressedHeader:
    """The header of a compressed file (checked as `decompress` checks it)."""
    return split_file(data)[0]


__all__ = [
    "CompressedFileError",
    "CompressedHeader",
    "compress",
    "compress_many",
    "decompress",
    "decompress_many",
    "model_fingerprint",
    "read_header",
]
