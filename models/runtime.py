"""The inference runtime: ONNX Runtime plus `tokenizers`, no torch.

Batches are sorted by length and padded only to their longest text, which on a CPU is worth
3-4x over fixed-length padding. The execution provider is chosen explicitly and reported:
onnxruntime-gpu silently falls back to the CPU when CUDA cannot load, so a CUDA request is checked
against the providers the session actually got and fails loudly, naming the missing library.

A model directory is checked as it loads, so a damaged or mismatched one is one ModelError naming the
file, the problem and the fix, never a traceback or a run with wrong labels: card.json's fields
(`read_card`), labels.json's lists (`read_labels`), labels.json and tokenizer.json against the sha256
the card recorded at export (`check_hashes`: of the file's JSON content, so a checkout that turned its
line endings into CRLF or an editor's final newline changes nothing), the size of each ONNX file it
loads against the one the card recorded (`files`), and the width of each ONNX output against
labels.json.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import math
import os
import re
import sys
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
from models.text import DEFAULT_STYLE, STYLE_MARKERS, STYLES, for_model
from models.tokenize import MAX_TOKENS, encode, load_tokenizer
from models.variants import CPU_DEFAULTS, CUDA_DEFAULTS, Device, Variant, by_name, without_recheck

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Shared libraries the CUDA provider needs, in the order a user would install them.
_CUDA_LIBRARIES = ("libcuda.so.1", "libcudart.so.12", "libcublas.so.12", "libcudnn.so.9")
# The model's two outputs, as `finsentry export` names them; each row of one scores labels.json's
# "topic" or "sentiment" list, in that order.
OUTPUTS = ("topic_logits", "sentiment_logits")
CARD, LABELS, TOKENIZER = "card.json", "labels.json", "tokenizer.json"
# The files whose sha256 `finsentry export` records in card.json ("sha256") and the runtime checks:
# a labels.json in another order runs without error and inverts the labels.
HASHED = (LABELS, TOKENIZER)
# Sentiment labels the scoring code reads by name (Prediction.sentiment_score).
REQUIRED_SENTIMENTS = ("negative", "positive")
_FIX = "restore the file `finsentry export` wrote, or re-run `finsentry export`"
# The same for a checkpoint (`finsentry train`'s directory, which `export` and `evaluate` also read).
_FIX_CHECKPOINT = "restore the labels.json `finsentry train` wrote into the checkpoint, or re-run `finsentry train`"


class ModelError(RuntimeError):
    """The model directory or the requested device cannot be used; the message says how to fix it."""


@contextmanager
def _reading(path: Path, fix: str = "re-run `finsentry export` or restore it") -> Iterator[None]:
    """A model file that exists but cannot be read (cut short, corrupt, of another version) as one
    ModelError naming it, instead of ONNX Runtime's, tokenizers' or json's own traceback."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:  # each reader raises its own kinds (InvalidProtobuf, ...)
        raise ModelError(f"{path}: cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); if the file is cut "
                         f"short or corrupt, {fix}") from exc


def _is_checkpoint(directory: Path) -> bool:
    """A `finsentry train` checkpoint rather than an exported model directory."""
    return (directory / "heads.pt").is_file() or (directory / "train.json").is_file()


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
    labels.json (the shipped default's for None), as written; the order is the model's output order.
    `read_labels` also checks it."""
    directory = directory if directory is not None else default_model_dir()
    return json.loads((directory / LABELS).read_text(encoding="utf-8-sig"))


def read_labels(directory: Path | None = None) -> dict[str, list[str]]:
    """`model_labels`, checked: an object with a non-empty "topic" list and a "sentiment" list holding
    negative and positive, each of distinct non-empty strings; otherwise ModelError naming labels.json
    and the fix that fits the directory (a checkpoint's comes from `finsentry train`, not `export`)."""
    directory = Path(directory) if directory is not None else default_model_dir()
    path = directory / LABELS
    checkpoint = _is_checkpoint(directory)
    fix = _FIX_CHECKPOINT if checkpoint else _FIX  # the fix that fits the kind of directory
    with _reading(path, fix if checkpoint else "re-run `finsentry export` or restore it"):
        labels = model_labels(directory)
    if not isinstance(labels, dict):
        raise ModelError(f"{path}: a JSON {_json_kind(labels)}, not an object with \"topic\" and \"sentiment\" lists; {fix}")
    for head in ("topic", "sentiment"):
        names = labels.get(head)
        if not isinstance(names, list) or not names:
            found = f"keys {_short(sorted(labels))}" if head not in labels else f"{head!r}: {_short(names)}"
            raise ModelError(f"{path}: needs a non-empty {head!r} list of label names (found {found}); {fix}")
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ModelError(f"{path}: {head!r} label {_short(bad[0])} is not a name; {fix}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ModelError(f"{path}: {head!r} names {twice} more than once; {fix}")
    missing = [n for n in REQUIRED_SENTIMENTS if n not in labels["sentiment"]]
    if missing:
        raise ModelError(f"{path}: the sentiment labels {labels['sentiment']} lack {' and '.join(map(repr, missing))}, "
                         f"which the sentiment score needs; {fix}")
    return {"topic": list(labels["topic"]), "sentiment": list(labels["sentiment"])}


def read_card(directory: Path) -> dict | None:
    """A model directory's card.json, its fields checked here and only here; None when there is none.
    A field the runtime reads that has the wrong kind of value is a ModelError naming card.json and
    the field, never a traceback in whichever reader meets it first."""
    path = Path(directory) / CARD
    if not path.is_file():
        return None
    with _reading(path):
        card = json.loads(path.read_text(encoding="utf-8"))
    check_card(card, path)
    return card


# A style's own model (card.json `style_models`) is a directory directly inside the model's own.
_PART_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def check_card(card: object, path: Path | str = CARD) -> None:
    """Raise ModelError naming `path` and the field for a card whose fields cannot be used."""
    def bad(field: str, value: object, want: str) -> ModelError:
        return ModelError(f"{path}: field {field} is {_short(value)}, {want}; fix it or re-run `finsentry export`")

    if not isinstance(card, dict):
        raise ModelError(f"{path}: a JSON {_json_kind(card)}, not an object of fields; {_FIX}")
    version = card.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int | float)):
        raise bad("version", version, "not a version string such as \"2026.11.30-900\"")
    tokens = card.get("max_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise bad("max_tokens", tokens, "not a whole number of tokens such as 64")
    recheck = card.get("recheck")
    if recheck is not None:
        if not isinstance(recheck, dict):
            raise bad("recheck", recheck, "not an object (or null: no re-check)")
        margin = recheck.get("margin")
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float)
                                   or not math.isfinite(margin) or margin < 0):
            raise bad("recheck.margin", margin, "not a number of at least 0 such as 0.5")
    files = card.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise bad("files", files, "not an object mapping each ONNX file to its size in bytes")
        for name, size in files.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise bad(f"files.{name}", size, "not a size in bytes such as 33433548")
    parts = card.get("style_models")
    if parts is not None:
        if not isinstance(parts, dict):
            raise bad("style_models", parts, "not an object mapping a style to the directory of its own model")
        for style, name in parts.items():
            if style not in STYLES or style == DEFAULT_STYLE:
                raise bad(f"style_models.{style}", name, f"not under a style with a model of its own "
                          f"({', '.join(s for s in STYLES if s != DEFAULT_STYLE)}; {DEFAULT_STYLE} is this model's)")
            if not isinstance(name, str) or not _PART_NAME.fullmatch(name) or name in {".", ".."}:
                raise bad(f"style_models.{style}", name, "not the name of a directory inside the model's own")
    markers = card.get("style_markers")
    if markers is not None and markers != STYLE_MARKERS:
        raise bad("style_markers", markers, f"not the markers this finsentry writes ({_short(STYLE_MARKERS)}): the model "
                  "was trained to read other ones; use the finsentry that trained it")
    hashes = card.get("sha256")
    if hashes is not None:
        if not isinstance(hashes, dict):
            raise bad("sha256", hashes, f"not an object mapping {' and '.join(HASHED)} to their sha256")
        for name in HASHED:
            value = hashes.get(name)
            if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise bad(f"sha256.{name}", value, "not a sha256 (64 lower-case hex digits)")


def _json_kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _short(value: object, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


_warned: set[tuple[str, str]] = set()


def _warn_once(directory: Path, what: str, message: str) -> None:
    """One warning per model directory and kind per process: to the log where logging is set up (the
    worker), else one `finsentry: warning:` line on stderr (the command line)."""
    key = (str(Path(directory).absolute()), what)
    if key in _warned:
        return
    _warned.add(key)
    if log.hasHandlers():
        log.warning("%s", message)
    else:
        try:  # a closed stderr loses the warning, nothing else
            print(f"finsentry: warning: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


def _byte_sha256s(path: Path) -> set[str]:
    """The sha256 of a JSON file's bytes as read and as written with LF line endings, with and without a
    final newline: what a card from before `content_sha256` recorded matches after a Windows checkout
    (CRLF) or an editor's final newline. A JSON string holds no raw line break, so only the whitespace
    between values differs."""
    raw = path.read_bytes()
    lf = raw.replace(b"\r\n", b"\n").rstrip(b" \t\r\n")
    return {hashlib.sha256(data).hexdigest() for data in (raw, lf, lf + b"\n")}


def content_sha256(path: Path) -> str:
    """The sha256 of a JSON file's content in canonical form (keys sorted, no spaces, UTF-8), which
    `finsentry export` records in card.json: line endings (a Windows checkout's CRLF), indentation,
    a final newline or a byte-order mark do not change it; any change to a key, value or order does."""
    value = json.loads(path.read_text(encoding="utf-8-sig"))
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_hashes(directory: Path, card: dict | None) -> None:
    """labels.json and tokenizer.json against the sha256 the card recorded at export: of the file's
    JSON content (`content_sha256`), or, as cards from before recorded it, of its bytes, line endings
    aside (`_byte_sha256s`); either matching is the exported file. A card from before the hashes were recorded (or none at all) is
    let through with one warning."""
    if card is None:
        return  # the missing card has its own warning
    recorded = card.get("sha256")
    if recorded is None:
        _warn_once(directory, "hashes", f"{directory / CARD}: records no sha256 of {' and '.join(HASHED)} (an export "
                   "from before they were recorded), so they are not checked against the model (a labels.json in "
                   "another order would run with wrong labels); re-run `finsentry export` to record them")
        return
    for name in HASHED:
        with _reading(directory / name):
            same = recorded[name] in _byte_sha256s(directory / name) or content_sha256(directory / name) == recorded[name]
        if not same:
            raise ModelError(f"{directory / name}: its sha256 differs from the one card.json recorded at export, so it "
                             f"is not the file exported with this model (edited, or from another model); {_FIX}")


def _check_size(directory: Path, file: str, card: dict) -> None:
    """An ONNX file's size against the one card.json recorded for it at export (`files`), where it
    recorded one: another export's file (a directory of mixed files) or one cut short is refused."""
    recorded = (card.get("files") or {}).get(file)
    if recorded is None:
        return
    try:
        size = (directory / file).stat().st_size
    except OSError:
        return  # not there: loading it says so
    if size != recorded:
        raise ModelError(f"{directory / file}: cannot be loaded: {size} bytes where card.json recorded {recorded} at "
                         f"export, so it is not the file exported with this model (cut short, or another export's); "
                         f"{_FIX}")


def missing_cuda_library() -> str | None:
    """The first CUDA library that cannot be loaded, or None when all load."""
    for name in _CUDA_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            return name
    return None


def uses_style_markers(directory: Path) -> bool:
    """Whether the model in `directory` was trained with style markers (models/text.py): an export's
    card.json `style_markers`, a checkpoint's train.json `config.social_files` (a list, maybe empty)."""
    if (directory / "heads.pt").is_file():
        meta = json.loads((directory / "train.json").read_text()) if (directory / "train.json").is_file() else {}
        return isinstance(meta, dict) and (meta.get("config") or {}).get("social_files") is not None
    card = read_card(directory)
    return card is not None and card.get("style_markers") is not None


class Classifier:
    def __init__(self, directory: Path, session, tokenizer, labels: dict[str, list[str]], card: dict, variant: str,
                 session_threads: tuple[int, int] = (1, 1), recheck=None, recheck_margin: float = 0.0) -> None:
        self.directory = directory
        self.session = session
        # Predictions whose top-two margin is below recheck_margin run again on this session (the
        # variant's recheck_file; models/recheck.py says why).
        self.recheck = recheck
        self.recheck_margin = recheck_margin
        self._rechecked = 0  # texts this model re-ran so far (`rechecked` adds its style models')
        self._rechecked_lock = threading.Lock()
        self.tokenizer = tokenizer
        self.topics = labels["topic"]
        self.sentiments = labels["sentiment"]
        self.card = card
        self.variant = variant
        self.provider: str = session.get_providers()[0]
        self.version: str = str(card.get("version", "unknown"))
        # Trained with style markers (models/text.py): each text is read after its style's marker.
        self.reads_markers: bool = card.get("style_markers") is not None
        # A style with a model of its own (card.json `style_models`, set by `load`): its texts go there.
        self.by_style: dict[str, Classifier] = {}
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
        for name in (TOKENIZER, LABELS):
            if not (directory / name).is_file():
                raise ModelError(f"{directory}: no {name}; point --model/FINSENTRY_MODEL_DIR at a directory made by `finsentry export`")
        use_cuda = _want_cuda(device, ort.get_available_providers())
        read = read_card(directory)
        if read is None:
            _warn_once(directory, "card", f"{directory}: no {CARD}, so the model's version shows as unknown, close "
                       f"int8 calls are not re-checked (int8+recheck needs its margin), max_tokens is taken as "
                       f"{MAX_TOKENS} and {' and '.join(HASHED)} are not checked against the model; restore card.json "
                       "or re-run `finsentry export`")
        card = read or {}
        labels = read_labels(directory)
        check_hashes(directory, read)
        with _reading(directory / TOKENIZER):
            tokenizer = load_tokenizer(directory / TOKENIZER, int(card.get("max_tokens") or MAX_TOKENS))
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
        _check_size(directory, chosen.file, card)
        if chosen.recheck_file is not None:
            _check_size(directory, chosen.recheck_file, card)
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
        _check_widths(directory, chosen.file, session, labels, tokenizer)
        if recheck is not None and chosen.recheck_file is not None:
            _check_widths(directory, chosen.recheck_file, recheck, labels, tokenizer)
        model = cls(directory, session, tokenizer, labels, card, chosen.name, threads, recheck, margin if recheck else 0.0)
        for style, name in (card.get("style_models") or {}).items():
            if (read_card(directory / name) or {}).get("style_models"):
                raise ModelError(f"{directory / name}: the {style} model has style models of its own; a style's model "
                                 f"must be a plain one (re-export it without --style-model)")
            part = cls.load(directory / name, device, variant)
            if (part.topics, part.sentiments) != (model.topics, model.sentiments):
                raise ModelError(f"{directory / name}: the {style} model's labels differ from {directory}'s; both must "
                                 "answer with the same topics and sentiments")
            model.by_style[style] = part
        if model.by_style:
            model.version += "".join(f" ({style}: {part.version})" for style, part in model.by_style.items())
        return model

    @property
    def rechecked(self) -> int:
        """Texts re-run on the re-check model so far, by this model and its style models."""
        return self._rechecked + sum(part.rechecked for part in self.by_style.values())

    def reader(self, style: str | None) -> Classifier:
        """The model that reads texts of `style` (None: DEFAULT_STYLE): its own, else this one."""
        return self.by_style.get(style or DEFAULT_STYLE, self)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits for already-normalised texts, one batch, in input order."""
        ids, mask = encode(self.tokenizer, texts)
        if self.provider == CUDA:
            return self._run_bound(ids, mask)
        topic, sentiment = self.session.run(list(OUTPUTS), {"input_ids": ids, "attention_mask": mask})
        if self.recheck is not None:
            rows = uncertain(topic, sentiment, self.recheck_margin)
            if rows.any():
                topic[rows], sentiment[rows] = self.recheck.run(
                    list(OUTPUTS), {"input_ids": ids[rows], "attention_mask": mask[rows]})
                with self._rechecked_lock:
                    self._rechecked += int(rows.sum())
        return topic, sentiment

    def _run_bound(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CUDA path: inputs copied to the device once, outputs left there until fetched."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        binding.bind_ortvalue_input("input_ids", ort.OrtValue.ortvalue_from_numpy(ids, "cuda", 0))
        binding.bind_ortvalue_input("attention_mask", ort.OrtValue.ortvalue_from_numpy(mask, "cuda", 0))
        for name in OUTPUTS:
            binding.bind_output(name, "cuda")
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

    def predict(self, texts: Sequence[str], batch_size: int | None = None,
                styles: Sequence[str | None] | None = None) -> list[Prediction]:
        """Predictions in input order; `batch_size` is the largest chunk run at once (default per provider).
        `styles`, one per text (models.text.STYLES; None or absent: DEFAULT_STYLE), is how a model
        trained with style markers reads each text; a model without them reads every text alike."""
        if not texts:
            return []
        t_logits, s_logits = self.style_logits(texts, styles, batch_size)
        return [self._prediction(t, s) for t, s in zip(t_logits, s_logits, strict=True)]

    def style_logits(self, texts: Sequence[str], styles: Sequence[str | None] | None = None,
                     batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits of raw `texts` (normalised here) in input order, each read by the model for its style
        (`reader`) and, where that model was trained with style markers, after its style's marker."""
        if styles is not None and len(styles) != len(texts):
            raise ValueError(f"{len(styles)} styles for {len(texts)} texts")
        chosen = [s or DEFAULT_STYLE for s in (styles or [None] * len(texts))]
        unknown = sorted(set(chosen) - set(STYLES))
        if unknown:
            raise ValueError(f"style {unknown[0]!r}: expected one of {', '.join(STYLES)}")
        topic = np.zeros((len(texts), len(self.topics)), dtype=np.float32)
        sentiment = np.zeros((len(texts), len(self.sentiments)), dtype=np.float32)
        routes: dict[int, tuple[Classifier, list[int]]] = {}
        for i, style in enumerate(chosen):
            model = self.reader(style)
            routes.setdefault(id(model), (model, []))[1].append(i)
        for model, rows in routes.values():
            inputs = [for_model(texts[i], chosen[i] if model.reads_markers else None) for i in rows]
            topic[rows], sentiment[rows] = model.all_logits(inputs, batch_size)
        return topic, sentiment

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


def _check_widths(directory: Path, file: str, session, labels: dict[str, list[str]], tokenizer) -> None:
    """Each output's width against labels.json's list for it: a labels.json of another model gives a
    shape error on the first run, or runs with every label moved. A width the graph leaves symbolic
    is read from one probe run."""
    outputs = {o.name: o.shape for o in session.get_outputs()}
    missing = [name for name in OUTPUTS if name not in outputs]
    if missing:
        raise ModelError(f"{directory / file}: no output {' or '.join(missing)} (it has {sorted(outputs)}), so it is not "
                         "a model `finsentry export` wrote; re-run `finsentry export`")
    widths = {name: (shape[-1] if shape else None) for name, shape in outputs.items() if name in OUTPUTS}
    if any(not isinstance(w, int) or w < 1 for w in widths.values()):
        ids, mask = encode(tokenizer, ["probe"])
        with _reading(directory / file):
            widths = dict(zip(OUTPUTS, (o.shape[-1] for o in session.run(list(OUTPUTS), {"input_ids": ids,
                                                                                        "attention_mask": mask})),
                              strict=True))
    for name, head, noun in ((OUTPUTS[0], "topic", "topics"), (OUTPUTS[1], "sentiment", "sentiment labels")):
        if widths[name] != len(labels[head]):
            raise ModelError(f"{directory / LABELS}: {len(labels[head])} {noun}, but {file} scores {widths[name]}, so it "
                             f"is not the labels.json exported with this model; {_FIX}")


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
