"""Text queries in a fresh process without PyTorch: the cached ONNX text tower and CLIP's tokenizer.

Importing open_clip (and with it torch and torchvision) costs seconds before any work, yet a text query needs only
the tokenizer and the text tower, which embed.py exports to ONNX and caches. Once a full Embedder has checked that
export against PyTorch, it records here, next to the .onnx file, what a later process needs to trust it without
PyTorch: a description (JSON: model, weights, library versions, trim rule, context length, dim) and the tokenizer
as a HF `tokenizers` file built from open_clip's own vocabulary and merges. `TextEncoder.load` reads them back with
onnxruntime and tokenizers only, and gives the vectors Embedder.encode_text gives on a CPU.

Only models whose tokenizer is open_clip's SimpleTokenizer (CLIP's BPE with "lower" cleaning) and whose text tower
is trimmable (embed._trim) are described; others (SigLIP, HF tokenizers, towers reading the whole context) keep the
full path, as does any change of model files or library versions until a full load describes them again.
"""
from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import os
from pathlib import Path

import numpy as np

from .embed import LOCAL_DIR, onnx_cache_dir

FORMAT = 1
TRIM = "cut after the last end-of-text (argmax) token"  # embed._trim; recorded so that changing it invalidates
PACKAGES = ("open_clip_torch", "torch", "onnxruntime", "tokenizers", "ftfy")
# open_clip's SimpleTokenizer pattern, but its special tokens, which `tokenizers` matches as added tokens instead.
PATTERN = r"(?i)'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"


def versions() -> dict[str, str | None]:
    """The installed versions that an export depends on, read from package metadata (importing would cost seconds)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def weights_identity(model_name: str) -> str:
    """A local model's weights files by path, size and mtime ("" for a named model: its tag names its weights)."""
    if not model_name.startswith(LOCAL_DIR):
        return ""
    folder = Path(model_name[len(LOCAL_DIR):])
    files = sorted(p for pat in ("*.safetensors", "*.bin", "*.pth") for p in folder.glob(pat))
    return ";".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def _identity(model_name: str, pretrained: str) -> dict:
    return {"format": FORMAT, "model": model_name, "pretrained": pretrained,
            "weights": weights_identity(model_name), "versions": versions(), "trim": TRIM}


def description_path(model_name: str, pretrained: str) -> Path:
    key = json.dumps(_identity(model_name, pretrained), sort_keys=True)
    return onnx_cache_dir() / f"textquery-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def clean(text: str) -> str:
    """open_clip's "lower" cleaning (tokenizer._clean_lower): ftfy, HTML entities twice, whitespace, lower case."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


def describable(tokenizer, model) -> bool:
    """Whether the light path reproduces this model's text vectors: CLIP's tokenizer, a trimmable tower."""
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower

    from .embed import _trimmable

    return (type(tokenizer) is SimpleTokenizer and tokenizer.clean_fn is _clean_lower
            and tokenizer.reduction_fn is None and _trimmable(model))


def build_tokenizer(simple):
    """open_clip's SimpleTokenizer as a `tokenizers` Tokenizer: its vocabulary and merges, its pattern, the same
    byte-to-unicode table (GPT-2's, which ByteLevel uses), end-of-word suffix "</w>". Cleaning, the start and end
    tokens and truncation are TextEncoder's."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    tok = Tokenizer(models.BPE(vocab=dict(simple.encoder), merges=merges, end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.add_special_tokens([simple.decoder[i] for i in simple.all_special_ids])
    return tok


def describe(e, onnx_path: Path) -> None:
    """Record e's checked text export for TextEncoder (see the module's doc); nothing for a model it cannot
    reproduce. A cache that cannot be written only means the full path next time."""
    if not describable(e.tokenizer, e.model):
        return
    path = description_path(e.model_name, e.pretrained)
    tokenizer_path = onnx_path.with_suffix(".tokenizer.json")
    try:
        data = _weights_apart(onnx_path)

        def description() -> dict:
            return {**_identity(e.model_name, e.pretrained), "onnx": onnx_path.name,
                    "sizes": _sizes(onnx_path, data, tokenizer_path), "tokenizer": tokenizer_path.name,
                    "context_length": int(e.tokenizer.context_length), "dim": int(e.dim),
                    "sot": int(e.tokenizer.sot_token_id), "eot": int(e.tokenizer.eot_token_id)}

        if not path.is_file() or not tokenizer_path.is_file() or json.loads(path.read_text()) != description():
            _atomic(tokenizer_path, build_tokenizer(e.tokenizer).to_str())  # again: it may be what changed
            _atomic(path, json.dumps(description(), indent=1))
    except Exception:  # e.g. a read-only or full cache: only the full path next time, never a failed query
        pass


def _weights_apart(onnx_path: Path) -> Path:
    """Rewrite an export as a graph file and one weights file, once, and return the latter: ONNX Runtime maps such
    a file instead of parsing and copying it (ViT-B-32's text tower loads in about 0.3 s instead of 1 s)."""
    data = onnx_path.with_name(onnx_path.name + ".data")
    if data.is_file() and onnx_path.stat().st_size < data.stat().st_size:
        return data
    import onnx

    model = onnx.load(str(onnx_path))
    tmp = onnx_path.parent / f"{onnx_path.name}.{os.getpid()}.dir"
    tmp.mkdir(exist_ok=True)
    try:
        onnx.save_model(model, str(tmp / onnx_path.name), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        os.replace(tmp / data.name, data)  # the weights first: a graph file in place always finds its weights
        os.replace(tmp / onnx_path.name, onnx_path)
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    return data


def _sizes(*paths: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in paths}


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class TextEncoder:
    """Embedder.encode_text from the cache alone (onnxruntime and tokenizers; no PyTorch, no open_clip)."""

    def __init__(self, meta: dict, session, tokenizer):
        self.session, self.tokenizer = session, tokenizer
        self.context, self.dim = meta["context_length"], meta["dim"]
        self.sot, self.eot = meta["sot"], meta["eot"]

    @classmethod
    def load(cls, model_name: str, pretrained: str) -> TextEncoder | None:
        """The light encoder for this model if the cache describes it for the installed libraries, else None."""
        path = description_path(model_name, pretrained)
        try:
            meta = json.loads(path.read_text())
            onnx = path.with_name(meta["onnx"])
            if {k: meta.get(k) for k in _identity(model_name, pretrained)} != _identity(model_name, pretrained) \
                    or _sizes(*(path.with_name(name) for name in meta["sizes"])) != meta["sizes"]:
                return None
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path.with_name(meta["tokenizer"])))
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as embed._onnx_session
            session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        except Exception:  # missing, damaged or from another version: the full path exports and describes again
            return None
        return cls(meta, session, tokenizer)

    def tokens(self, texts: list[str]) -> np.ndarray:
        """As open_clip's tokenizer then embed._trim: start, BPE ids, end (truncated to the context, the last
        kept token replaced by the end), zero padding cut after the longest text's end token."""
        encoded = self.tokenizer.encode_batch([clean(t) for t in texts], add_special_tokens=False)
        out = np.zeros((len(texts), self.context), np.int64)
        for row, enc in zip(out, encoded):
            ids = [self.sot, *enc.ids[:self.context - 2], self.eot]
            row[:len(ids)] = ids
        return out[:, :int(out.argmax(axis=1).max()) + 1]

    def encode_text(self, texts: list[str]) -> np.ndarray:
        v = self.session.run(None, {"input": self.tokens(texts)})[0].astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-12)
        return v
