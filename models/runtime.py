"""The inference runtime: ONNX Runtime plus `tokenizers`, no torch.

Batches are sorted by length and padded only to their longest text, which on a CPU is worth
3-4x over fixed-length padding. The execution provider is chosen explicitly and reported:
onnxruntime-gpu silently falls back to the CPU when CUDA cannot load, so a CUDA request is checked
against the providers the session actually got and fails loudly, naming the missing library.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from models.metrics import softmax
from models.recheck import uncertain
from models.text import for_model
from models.tokenize import encode, load_tokenizer
from models.variants import CPU_DEFAULTS, CUDA_DEFAULTS, Device, Variant, by_name, without_recheck

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Shared libraries the CUDA provider needs, in the order a user would install them.
_CUDA_LIBRARIES = ("libcuda.so.1", "libcudart.so.12", "libcublas.so.12", "libcudnn.so.9")


class ModelError(RuntimeError):
    """The model directory or the requested device cannot be used; the message says how to fix it."""


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A model file that exists but cannot be read (cut short, corrupt, of another version) as one
    ModelError naming it, instead of ONNX Runtime's, tokenizers' or json's own traceback."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:  # each reader raises its own kinds (InvalidProtobuf, ...)
        raise ModelError(f"{path}: cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); if the file is cut "
                         "short or corrupt, re-run `finsentry export` or restore it") from exc


@dataclass(frozen=True, slots=True)
class Prediction:
    topic: str
    topic_confidence: float
    sentiment: str
    # p(positive) - p(negative): one signed number for trend charts and detectors.
    sentiment_score: float
    # Confidence of the sentiment label, the one alerts act on.
    confidence: float


def default_model_dir() -> Path:
    return Path(str(resources.files("models") / "default"))


def model_labels(directory: Path | None = None) -> dict[str, list[str]]:
    """A model directory's label vocabulary, `{"topic": [...], "sentiment": [...]}` from its
    labels.json (the shipped default's for None); the order is the model's output order."""
    directory = directory if directory is not None else default_model_dir()
    return json.loads((directory / "labels.json").read_text(encoding="utf-8"))


def missing_cuda_library() -> str | None:
    """The first CUDA library that cannot be loaded, or None when all load."""
    for name in _CUDA_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            return name
    return None


class Classifier:
    def __init__(self, directory: Path, session, tokenizer, labels: dict[str, list[str]], card: dict, variant: str,
                 session_threads: tuple[int, int] = (1, 1), recheck=None, recheck_margin: float = 0.0) -> None:
        self.directory = directory
        self.session = session
        # Predictions whose top-two margin is below recheck_margin run again on this session (the
        # variant's recheck_file; models/recheck.py says why).
        self.recheck = recheck
        self.recheck_margin = recheck_margin
        self.rechecked = 0  # texts re-run so far, for the worker's metrics
        self._rechecked_lock = threading.Lock()
        self.tokenizer = tokenizer
        self.topics = labels["topic"]
        self.sentiments = labels["sentiment"]
        self.card = card
        self.variant = variant
        self.provider: str = session.get_providers()[0]
        self.version: str = str(card.get("version", "unknown"))
        self._pos = self.sentiments.index("positive")
        self._neg = self.sentiments.index("negative")
        # On a CPU, padding costs more than batching saves (bench/inference.py: one at a time 255/s,
        # length-sorted chunks of 8 at best 277/s), and int8 activation scales are computed per run,
        # so a text's label could change with its batch-mates: a story re-scored after a crash must
        # get the same label. So the CPU runs each text alone; a GPU wants big batches.
        self.batch_size = 256 if self.provider == CUDA else 1
        # A one-headline run does not keep two intra-op threads busy: on 2 cores, two concurrent
        # single-threaded runs did 418/s where one two-threaded run did 326/s. ORT sessions accept
        # concurrent runs; a GPU gets one stream of big batches instead.
        self.parallel = 1 if self.provider == CUDA else max(1, session_threads[1])
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="ort-run") if self.parallel > 1 else None

    @classmethod
    def load(cls, path: str | Path | None = None, device: Device = "auto", variant: str | None = None) -> Classifier:
        """`path=None` is the shipped default. `variant` names one of models/variants.py's VARIANTS;
        None runs the device's first default the directory can run (on a CPU int8+recheck where the
        export chose a re-check margin, else int8; on CUDA fp16, else int8)."""
        import onnxruntime as ort

        directory = Path(path) if path is not None else default_model_dir()
        for name in ("tokenizer.json", "labels.json"):
            if not (directory / name).is_file():
                raise ModelError(f"{directory}: no {name}; point --model/FINSENTRY_MODEL_DIR at a directory made by `finsentry export`")
        use_cuda = _want_cuda(device, ort.get_available_providers())
        card = {}
        if (directory / "card.json").is_file():
            with _reading(directory / "card.json"):
                card = json.loads((directory / "card.json").read_text())
        margin = float((card.get("recheck") or {}).get("margin") or 0.0)
        chosen = _pick_variant(directory, variant, use_cuda, margin)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        threads = cpu_threads(use_cuda)
        options.intra_op_num_threads = threads[0]
        options.log_severity_level = 3
        # Spinning threads burn a core while waiting for work; in a worker that shares the CPU with
        # the event loop and the tokenizer that costs more than the wake-up latency it saves.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [CUDA, CPU] if use_cuda else [CPU]
        with _reading(directory / chosen.file):
            session = ort.InferenceSession(str(directory / chosen.file), options, providers=providers)
        recheck = None
        if chosen.recheck_file is not None:
            with _reading(directory / chosen.recheck_file):
                recheck = ort.InferenceSession(str(directory / chosen.recheck_file), options, providers=[CPU])
        if use_cuda and session.get_providers()[0] != CUDA:
            missing = missing_cuda_library()
            raise ModelError(
                "device cuda: ONNX Runtime could not start the CUDA provider"
                + (f" ({missing} cannot be loaded: install the CUDA 12 runtime and cuDNN 9)" if missing else "")
                + "; use --device cpu to run on the CPU"
            )
        with _reading(directory / "labels.json"):
            labels = model_labels(directory)
        with _reading(directory / "tokenizer.json"):
            tokenizer = load_tokenizer(directory / "tokenizer.json", int(card.get("max_tokens", 64)))
        return cls(directory, session, tokenizer, labels, card, chosen.name, threads, recheck, margin if recheck else 0.0)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits for already-normalised texts, one batch, in input order."""
        ids, mask = encode(self.tokenizer, texts)
        if self.provider == CUDA:
            return self._run_bound(ids, mask)
        topic, sentiment = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        if self.recheck is not None:
            rows = uncertain(topic, sentiment, self.recheck_margin)
            if rows.any():
                topic[rows], sentiment[rows] = self.recheck.run(
                    None, {"input_ids": ids[rows], "attention_mask": mask[rows]})
                with self._rechecked_lock:
                    self.rechecked += int(rows.sum())
        return topic, sentiment

    def _run_bound(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CUDA path: inputs copied to the device once, outputs left there until fetched."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        binding.bind_ortvalue_input("input_ids", ort.OrtValue.ortvalue_from_numpy(ids, "cuda", 0))
        binding.bind_ortvalue_input("attention_mask", ort.OrtValue.ortvalue_from_numpy(mask, "cuda", 0))
        binding.bind_output("topic_logits", "cuda")
        binding.bind_output("sentiment_logits", "cuda")
        self.session.run_with_iobinding(binding)
        topic, sentiment = binding.copy_outputs_to_cpu()
        return topic.astype(np.float32), sentiment.astype(np.float32)

    def all_logits(self, texts: Sequence[str], batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits for already-normalised texts in input order: length-sorted chunks of `batch_size`
        (default per provider), run `self.parallel` at a time."""
        size = batch_size or self.batch_size
        if size < 1:
            raise ValueError(f"batch size {size}: must be at least 1")  # else no chunk runs and zeros come back
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start : start + size] for start in range(0, len(order), size)]
        topic = np.zeros((len(texts), len(self.topics)), dtype=np.float32)
        sentiment = np.zeros((len(texts), len(self.sentiments)), dtype=np.float32)

        def run(share: list[list[int]]) -> None:  # each thread writes only its own rows
            for idx in share:
                topic[idx], sentiment[idx] = self.logits([texts[i] for i in idx])

        # One share per thread, dealt round-robin so each gets short and long texts alike.
        shares = [chunks[k :: self.parallel] for k in range(min(self.parallel, len(chunks)))]
        if self._pool is None or len(shares) < 2:
            run(chunks)
        else:
            list(self._pool.map(run, shares))
        return topic, sentiment

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[Prediction]:
        """Predictions in input order; `batch_size` is the largest chunk run at once (default per provider)."""
        if not texts:
            return []
        t_logits, s_logits = self.all_logits([for_model(t) for t in texts], batch_size)
        return [self._prediction(t, s) for t, s in zip(t_logits, s_logits, strict=True)]

    def _prediction(self, topic_logits: np.ndarray, sentiment_logits: np.ndarray) -> Prediction:
        tp = softmax(topic_logits.astype(np.float64))
        sp = softmax(sentiment_logits.astype(np.float64))
        t, s = int(tp.argmax()), int(sp.argmax())
        return Prediction(
            topic=self.topics[t],
            topic_confidence=round(float(tp[t]), 4),
            sentiment=self.sentiments[s],
            sentiment_score=round(float(sp[self._pos] - sp[self._neg]), 4),
            confidence=round(float(sp[s]), 4),
        )


def cpu_threads(use_cuda: bool) -> tuple[int, int]:
    """(intra-op threads per run, concurrent runs). `FINSENTRY_ORT_THREADS` sets the first; the CPU
    cores this process may use are shared out among runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    raw = os.environ.get("FINSENTRY_ORT_THREADS", "")
    try:
        intra = int(raw) if raw else (cores if use_cuda else 1)
    except ValueError:
        raise ModelError(f"FINSENTRY_ORT_THREADS={raw!r}: use a whole number of threads, e.g. 1") from None
    if intra < 1:
        raise ModelError(f"FINSENTRY_ORT_THREADS={raw!r}: use at least 1 thread")
    return intra, max(1, cores // intra)


def _want_cuda(device: Device, available: list[str]) -> bool:
    if device == "cpu":
        return False
    if device == "cuda":
        if CUDA not in available:
            raise ModelError("device cuda: this onnxruntime has no CUDA provider; pip install onnxruntime-gpu")
        return True
    if device != "auto":
        raise ModelError(f"device {device!r}: use auto, cpu or cuda")
    return CUDA in available and missing_cuda_library() is None


def _pick_variant(directory: Path, requested: str | None, use_cuda: bool, recheck_margin: float) -> Variant:
    """The variant to run: the one asked for, or the device's first default (models/variants.py)
    that the directory can run. A re-check variant needs the CPU, its re-check file and a margin."""
    if requested is None:
        wanted = CUDA_DEFAULTS if use_cuda else CPU_DEFAULTS
    else:
        try:
            wanted = (by_name(requested),)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
    present = [v for v in wanted if (directory / v.file).is_file()]
    if not present:
        files = list(dict.fromkeys(v.file for v in wanted))
        raise ModelError(f"{directory}: none of {files} exists; run `finsentry export` into this directory")
    for chosen in present:
        if chosen.recheck_file is None or (
                not use_cuda and recheck_margin > 0 and (directory / chosen.recheck_file).is_file()):
            return chosen
    chosen = present[0]
    raise ModelError(f"{directory}: variant {chosen.name} needs the CPU, {chosen.recheck_file} and a recheck margin "
                     f"in card.json; re-export with `finsentry export`, or use --variant {without_recheck(chosen).name}")
