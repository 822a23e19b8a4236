"""Load a CLIP model by name and turn frames and texts into L2-normalised float32 vectors."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import socket
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .errors import ModelLoadError
from .preprocess import MODEL, Preprocessor

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
LOCAL_DIR = "local-dir:"
# Below this cosine a frame is not shown as a match. CLIP-style models score a matching caption against an image at
# roughly 0.25-0.35 and unrelated text at 0.1-0.2; a local model folder may carry its own measured value under
# "vidsearch_min_score" in open_clip_config.json (the test model does).
DEFAULT_MIN_SCORE = 0.2
TEXT_CACHE = 256


def resolve_model(model: str | None, pretrained: str | None) -> tuple[str, str]:
    """Normalise a (model, pretrained) pair: local folders become absolute, a missing tag gets the model's default."""
    model = model or DEFAULT_MODEL
    if model.startswith(LOCAL_DIR):
        return LOCAL_DIR + str(Path(model[len(LOCAL_DIR):]).expanduser().resolve()), ""
    if model.startswith("hf-hub:"):
        return model, ""
    if pretrained is None:
        if model == DEFAULT_MODEL:
            pretrained = DEFAULT_PRETRAINED
        else:
            import open_clip

            tags = open_clip.list_pretrained_tags_by_model(model)
            pretrained = tags[0] if tags else ""
    return model, pretrained


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _hub_reachable() -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet_offline_aware():
    """Silence open_clip's and the hub's logging while loading, and when the hub cannot be reached, make the
    hub client use its cache only: otherwise it retries for most of a minute before failing."""
    import huggingface_hub.constants as hf

    was_offline = hf.HF_HUB_OFFLINE
    with _quiet_loading():
        try:
            if not was_offline and not _hub_reachable():
                hf.HF_HUB_OFFLINE = True
            yield
        finally:
            hf.HF_HUB_OFFLINE = was_offline


@contextlib.contextmanager
def _quiet_loading():
    """Hide what open_clip and the hub client log below ERROR while a model loads, and nothing else: the program
    that imports vidsearch keeps its logging as it set it up. open_clip logs mostly through the logging module's
    functions, on the root logger (and those give it a stderr handler when it has none: a handler that drops
    everything is there meanwhile); their own loggers are turned down and back."""
    import open_clip

    folder = os.path.dirname(open_clip.__file__) + os.sep

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(folder)

    root, stand_in = logging.getLogger(), logging.NullHandler()
    own = {logger: logger.level for logger in map(logging.getLogger, ("open_clip", "huggingface_hub"))}
    root.addFilter(keep)
    root.addHandler(stand_in)
    for logger in own:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeFilter(keep)
        root.removeHandler(stand_in)
        for logger, level in own.items():
            logger.setLevel(level)


def _check_local_dir(path: str) -> None:
    folder = Path(path)
    if not (folder / "open_clip_config.json").is_file():
        raise ModelLoadError(f"{folder} is not an open_clip model folder: it has no open_clip_config.json.")
    if not any(next(folder.glob(pat), None) for pat in ("*.safetensors", "*.bin", "*.pth")):
        # open_clip would only warn and hand back a randomly initialised model: refuse instead.
        raise ModelLoadError(f"{folder} has no weights file (open_clip_model.safetensors or "
                             "open_clip_pytorch_model.bin).")


def _how_to_fix(model: str, pretrained: str) -> str:
    return (
        f"Could not load the CLIP weights for {model} ({pretrained}): they are not in the local cache and could "
        f"not be downloaded. Connect to the internet once, or point at a local copy with "
        f"--model local-dir:PATH (a folder with open_clip_config.json and the weights)."
    )


class Embedder:
    """A loaded CLIP model. Loading costs seconds (and a download on first use of a named model)."""

    def __init__(self, model: str | None = None, pretrained: str | None = None, device: str = "auto",
                 backend: str = "auto", preprocess: str = MODEL):
        """`backend`: "auto" runs both towers with ONNX Runtime on a CPU (faster, same vectors within 1e-4) and
        with PyTorch elsewhere; "torch" always uses PyTorch. `preprocess`: "model" (the model's own open_clip
        preprocessing) or "letterbox" (see vidsearch.preprocess)."""
        import open_clip
        import torch

        self.model_name, self.pretrained = resolve_model(model, pretrained)
        self.device = pick_device(device)
        name = self.model_name
        if name.startswith(LOCAL_DIR):
            _check_local_dir(name[len(LOCAL_DIR):])
        elif not name.startswith("hf-hub:"):
            if name not in open_clip.list_models():
                raise ModelLoadError(f"Unknown model {name!r}; `python -m open_clip list` style names such as "
                                     f"ViT-B-32, or --model local-dir:PATH.")
            tags = open_clip.list_pretrained_tags_by_model(name)
            if self.pretrained not in tags and not os.path.isfile(self.pretrained):
                raise ModelLoadError(f"Unknown pretrained tag {self.pretrained!r} for {name}; "
                                     f"known tags: {', '.join(tags) or 'none'}.")
        precision = "fp16" if self.device == "cuda" else "fp32"
        try:
            with _quiet_offline_aware():
                model_obj, _, transform = open_clip.create_model_and_transforms(
                    name, pretrained=self.pretrained or None, device=self.device, precision=precision)
                self.tokenizer = open_clip.get_tokenizer(name)
        except ModelLoadError:
            raise
        except Exception as e:
            if name.startswith(LOCAL_DIR):
                raise ModelLoadError(f"Could not load the model in {name[len(LOCAL_DIR):]}: {e}") from None
            raise ModelLoadError(_how_to_fix(name, self.pretrained)) from None
        self.model = model_obj.eval()  # open_clip returns it in training mode
        self.default_min_score = DEFAULT_MIN_SCORE
        if name.startswith(LOCAL_DIR):
            config = json.loads((Path(name[len(LOCAL_DIR):]) / "open_clip_config.json").read_text())
            self.default_min_score = float(config.get("vidsearch_min_score", DEFAULT_MIN_SCORE))
        self.preprocessor = Preprocessor(transform, open_clip.get_model_preprocess_cfg(self.model), preprocess)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()
        self._use_onnx = backend == "auto" and self.device == "cpu"
        self._sessions: dict = {}  # "image"/"text" → an ONNX Runtime session, or None where PyTorch runs it
        self._session_lock = threading.Lock()
        with torch.inference_mode():
            self.dim = int(_encode_text(self.model, self.tokenizer(["a"]).to(self.device)).shape[1])

    def _session(self, part: str):
        """The ONNX Runtime session for one tower, built on first use (so searching by text never pays for the
        image tower's), or None."""
        if not self._use_onnx:
            return None
        with self._session_lock:
            if part not in self._sessions:
                self._sessions[part] = _onnx_session(self, part)
                if part == "image" and self._sessions[part] is not None:
                    self.model.visual = None  # the session holds its own copy of these weights (350 MB, ViT-B-32)
            return self._sessions[part]

    def ready(self, notify: Callable[[str], None] | None = None) -> None:
        """Build the image tower's ONNX Runtime session now, not in the first batch, and export the text tower for
        text queries in later processes (vidsearch.textcache), telling `notify` first when that means exporting
        (once per model and library versions). Indexing and a starting server call it."""
        if not self._use_onnx:
            return
        from . import textcache

        text = textcache.describable(self.tokenizer, self.model)
        missing = [p for p in ("image", "text") if (p == "image" or text) and not _onnx_path(self, p).is_file()]
        if missing and notify is not None:
            notify(f"Preparing {_shown(self.model_name)} for this CPU, once: about {_export_seconds(self)} s")
        self._session("image")
        if text and ("text" in missing or not textcache.description_path(self.model_name, self.pretrained).is_file()):
            _onnx_session(self, "text")  # checks, describes; the session is not kept (indexing needs no text)

    @property
    def decode_side(self) -> int:
        """The shortest side to decode pictures at for this model (see preprocess.DECODE_FACTOR)."""
        return self.preprocessor.decode_side

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 picture → the model's input picture (still uint8; cheap, run it in decode threads)."""
        return self.preprocessor.square(rgb)

    def encode_prepared(self, squares: list[np.ndarray]) -> np.ndarray:
        import torch

        batch = self.preprocessor.batch(squares, self.device).to(self.dtype)
        session = self._session("image")
        if session is not None:
            return _normalise(torch.from_numpy(session.run(None, {"input": batch.numpy()})[0]))
        with torch.inference_mode():
            feats = self.model.encode_image(batch)
        return _normalise(feats)

    def encode_images(self, rgbs: list[np.ndarray]) -> np.ndarray:
        return self.encode_prepared([self.prepare(x) for x in rgbs])

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """One row per text. Recent texts come from a small cache: a results page asks again for each video."""
        import torch

        with self._text_lock:  # the web server's threads share one cache
            todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
            if todo:
                tokens = _trim(self.model, self.tokenizer(todo).to(self.device))
                session = self._session("text")
                if session is not None:
                    feats = _normalise(torch.from_numpy(session.run(None, {"input": tokens.numpy()})[0]))
                else:
                    with torch.inference_mode():
                        feats = _normalise(_text_tower(self.model)(tokens))
                self._text_cache.update(zip(todo, feats))
            for text in texts:
                self._text_cache.move_to_end(text)
            out = np.stack([self._text_cache[t] for t in texts])
            while len(self._text_cache) > TEXT_CACHE:
                self._text_cache.popitem(last=False)
            return out


def onnx_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vidsearch" / "onnx"


def _onnx_session(e: Embedder, part: str):
    """An ONNX Runtime session for e's image or text tower, or None where that cannot be had.

    On this project's 2-core benchmark CPU, ONNX Runtime runs ViT-B-32's image tower as fast as PyTorch
    (benchmarks/bench.py index) and a short text about 3x faster (README, Speed). The export takes seconds, so
    it is cached per model and library versions; a session is used only if it reproduces PyTorch's vectors.
    """
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    from . import textcache

    path = _onnx_path(e, part)
    if part == "image":
        module = e.model.visual
        probes = [torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, *e.preprocessor.size),
                                                                            np.float32))]
        axes = {0: "n"}
    else:
        module = _text_tower(e.model)
        # Two lengths: the exported graph must take any text length, not only the one it was traced with.
        probes = [_trim(e.model, e.tokenizer(t)) for t in (["a photo of a dog", "x"], ["a red car parked by a lake"])]
        axes = {0: "n", 1: "tokens"}
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    # Idle threads spinning for work held the cores that FAISS and numpy need right after a query's text (text
    # search p50 at 100k frames 40 → 29 ms; indexing speed unchanged).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for attempt in range(2):  # a cached file that does not load (damaged, other ORT version) is exported again
        try:
            if not path.is_file():
                _export(module, probes[0], axes, path)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for probe in probes:
                with torch.inference_mode():
                    want = _normalise(module(probe))
                got = _normalise(torch.from_numpy(session.run(None, {"input": probe.numpy()})[0]))
                if np.abs(got - want).max() > 1e-4:
                    return None
            if part == "text":
                textcache.describe(e, path)  # a later text query can then skip loading PyTorch
            return session
        except Exception:  # an architecture the exporter cannot handle, a read-only cache: PyTorch does the work
            if attempt == 0 and path.is_file():
                path.unlink(missing_ok=True)
                continue
            return None


def _shown(model_name: str) -> str:
    return Path(model_name[len(LOCAL_DIR):]).name if model_name.startswith(LOCAL_DIR) else model_name


def _export_seconds(e: Embedder) -> int:
    """Rough, 1 s per 5M parameters: both towers of ViT-B-32 (151M) took 65 s on the 2-core development machine
    while it was busy (load 6), so this errs low there."""
    params = sum(p.numel() for p in e.model.parameters())
    return max(5, int(round(params / 5e6, -1)))


def _onnx_path(e: Embedder, part: str) -> Path:
    """Where e's exported tower is cached: per model, weights, input size and library versions."""
    import open_clip
    import torch

    from .textcache import weights_identity

    key = "|".join([part, e.model_name, e.pretrained, weights_identity(e.model_name), str(e.preprocessor.size),
                    open_clip.__version__, torch.__version__])
    return onnx_cache_dir() / f"{part}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.onnx"


def _export(module, example, axes: dict, path: Path) -> None:
    """Export with torch.export (dynamo): the older tracer bakes the traced text length into the attention."""
    import torch

    dims = {i: torch.export.Dim(name, min=2, max=77) if name == "tokens" else torch.export.Dim(name)
            for i, name in axes.items()}
    # The exporter's optimiser logs what it leaves unfolded: not the user's business, and it broke the progress bar.
    quiet = logging.getLogger("onnxscript")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["input"],
                                        output_names=["output"], dynamic_shapes=(dims,), optimize=True)
    finally:
        quiet.setLevel(level)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    program.save(str(tmp))
    os.replace(tmp, path)  # atomic: two runs exporting at once both end with a whole file


def _trimmable(model) -> bool:
    import open_clip

    return type(model) is open_clip.CLIP and model.text_pool_type == "argmax" and model.attn_mask is not None


def _trim(model, tokens):
    """Tokens without the padding after the longest text's end, where that cannot change the result.

    Standard CLIP text towers are causal and read the end-of-text token (the largest id, hence argmax pooling), so
    the padding after it is dead weight: cutting the 77-token context there makes a short query about 2.5x cheaper
    on CPU, to within float rounding (tests/test_embed.py). Other towers get the whole context.
    """
    return tokens[:, :int(tokens.argmax(dim=-1).max()) + 1] if _trimmable(model) else tokens


def _encode_text(model, tokens):
    return _text_tower(model)(_trim(model, tokens))


def _text_tower(model):
    """A module computing model.encode_text for tokens of any length up to the context (as _trim leaves them):
    what runs on PyTorch, and the graph exported for ONNX Runtime."""
    return _text_tower_class()(model)


@functools.cache
def _text_tower_class():
    import torch  # here, not at the top: `vidsearch info` and the CLI's start need no torch

    class TextTower(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, tokens):
            from open_clip.transformer import text_global_pool

            model = self.model
            if not _trimmable(model):
                return model.encode_text(tokens)
            n = tokens.shape[1]
            cast = model.transformer.get_cast_dtype()
            x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
            x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
            x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
            proj = model.text_projection
            return x if proj is None else proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj

    return TextTower


def _normalise(feats) -> np.ndarray:
    v = feats.float().cpu().numpy()
    v /= np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-12)
    return v.astype(np.float32, copy=False)
