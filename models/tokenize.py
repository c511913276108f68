"""One tokenisation path for training, export and inference, so the ONNX model sees exactly the
ids the torch model was trained on. Batches are padded only to their longest text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

MAX_TOKENS = 64


def load_tokenizer(path: str | Path, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, int64, shaped [len(texts), longest]."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    longest = max((len(e.ids) for e in encodings), default=1)
    ids = np.zeros((len(encodings), longest), dtype=np.int64)
    mask = np.zeros((len(encodings), longest), dtype=np.int64)
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        ids[row, :n] = enc.ids
        mask[row, :n] = 1
    return ids, mask
