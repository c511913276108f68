"""Export a trained checkpoint to the ONNX model directory the runtime loads.

The graph is exported with dynamic batch and sequence axes, attention is fused by ONNX Runtime's
transformer optimizer, and two deployable variants are written: per-channel int8 (`model.onnx`,
the CPU default) and fp16 (`model.fp16.onnx`, for CUDA, and on a CPU for re-checking the int8
model's uncertain predictions: models/recheck.py). A parity report against the torch checkpoint on
the dev sets goes into the model card, so a bad export never ships silently.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.data import Columns, DataError, load_file, model_texts, styled
from models.smoothing import Smoothed
from models.sources import attributions
from models.text import DEFAULT_STYLE, NORMALISATION_VERSION, STYLE_MARKERS, STYLES
from models.variants import FP16, FP32, INT8, INT8_RECHECK, VARIANTS

OPSET = 17
# Every file an export writes into a model directory; one an export did not write this time (fp16
# with fp16=False, fp32 with keep_fp32=False) is removed from the directory, so no earlier export's
# file is left beside the new ones.
MODEL_FILES = frozenset({"card.json", "labels.json", "tokenizer.json",
                         *(v.file for v in VARIANTS.values()),
                         *(v.recheck_file for v in VARIANTS.values() if v.recheck_file)})
# The build directory's name: `.export-<12 hex digits>` inside an existing --out, `.NAME.export-<12 hex
# digits>` beside a new one; only a directory so named that holds BUILD_MARKER is ever pruned.
BUILD_PREFIX = ".export-"
BUILD_SUFFIX = re.compile(r"[0-9a-f]{12}")
# Written into each build directory as it is made: who builds it (pid, host) and since when, so that a
# later export removes only the build of an export that is no longer running (`_prune`).
BUILD_MARKER = ".finsentry-export-build.json"
# A build whose export still seems to run (its pid is alive on this host, or it is on another host) is
# left alone for this long; after it, the pid is taken to be another process's.
STALE_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Parity:
    variant: str
    max_abs_logit_diff: float
    topic_agreement: float
    sentiment_agreement: float
    n: int


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def export_onnx(model, path: Path) -> None:
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids, attention_mask)

    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    torch.onnx.export(
        Wrapped(model).eval(), (ids, mask), str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["topic_logits", "sentiment_logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                      "topic_logits": {0: "batch"}, "sentiment_logits": {0: "batch"}},
        opset_version=OPSET, dynamo=False, do_constant_folding=True,
    )


def fuse(raw: Path, num_heads: int, hidden_size: int):
    from onnxruntime.transformers import optimizer

    return optimizer.optimize_model(str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                    opt_level=1, use_gpu=False)


# Calibration texts the int8 inputs are smoothed on (models/smoothing.py), each run alone: about
# 6,000 token rows per MatMul, over which each MatMul's smoothing is chosen.
CALIBRATION_TEXTS = 256
# The feed-forward down-projections, whose inputs carry the largest outliers: without calibration
# texts to smooth on they stay fp32 (quantised unsmoothed they cost 1-2 points of agreement).
DOWN_PROJECTIONS = re.compile(r"layer\.\d+/output/dense/MatMul$")


@dataclass(frozen=True, slots=True)
class Quantized:
    """What `quantize_int8` did: each MatMul's smoothing, on how many texts, and the MatMuls it kept fp32."""

    smoothing: list[Smoothed]
    texts: int
    kept_fp32: list[str]

    def summary(self, source: str) -> dict:
        """card.json's `export.quantization`; `source` says where the calibration texts came from (or why none)."""
        if self.texts:
            smoothed = sum(q.alpha is not None for q in self.smoothing)
            recipe = ("dynamic int8 (per-channel s8 weights, u8 inputs with one scale per run) of every encoder "
                      f"MatMul and the fused attention's projection, the inputs of {smoothed} of these "
                      f"{len(self.smoothing)} smoothed per channel first, where that lowered the simulated int8 error "
                      "(SmoothQuant, models/smoothing.py); the heads' Gemms int8, unsmoothed")
        else:
            recipe = ("dynamic int8 (per-channel s8 weights, u8 inputs with one scale per run), not smoothed: no "
                      f"calibration texts; the {len(self.kept_fp32)} feed-forward down-projections kept fp32")
        return {"recipe": recipe, "calibration": {"texts": self.texts, "source": source},
                "kept_fp32": self.kept_fp32,
                "smoothing_alpha": {q.node: q.alpha for q in self.smoothing},
                "smoothing_error_ratio": {q.node: q.error_ratio for q in self.smoothing}}


def quantize_int8(source: Path, target: Path, tokenizer, texts: Sequence[str]) -> Quantized:
    """Dynamic int8 of `source`'s fp32 graph into `target`: every MatMul, each input first smoothed
    on the first CALIBRATION_TEXTS of `texts` (models/smoothing.py); with no texts, unsmoothed and the
    down-projections kept fp32 (DOWN_PROJECTIONS)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from models.smoothing import smooth

    texts = list(texts[:CALIBRATION_TEXTS])
    with tempfile.TemporaryDirectory() as tmp:
        smoothed = Path(tmp) / "smoothed.onnx"
        chosen = smooth(source, smoothed, tokenizer, texts) if texts else []
        keep = [] if texts else [n.name for n in onnx.load(str(source), load_external_data=False).graph.node
                                 if n.op_type == "MatMul" and DOWN_PROJECTIONS.search(n.name)]
        quantize_dynamic(str(smoothed if texts else source), str(target), per_channel=True, nodes_to_exclude=keep,
                         weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return Quantized(chosen, len(texts), keep)


def fp32_graph(model_dir: Path, work: Path) -> Path:
    """A model directory's fused fp32 graph: its `model.fp32.onnx`, or where export dropped it (`--no-fp32`)
    the fp16 graph written into `work` with its fp16 initializers widened to fp32 and its casts to fp16
    turned into casts to fp32 (the numbers ONNX Runtime computes from `model.fp16.onnx` on a CPU, which
    the re-check runs)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    if (model_dir / FP32.file).is_file():
        return model_dir / FP32.file
    model = onnx.load(str(model_dir / FP16.file))
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT16:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
    del model.graph.value_info[:]
    path = work / FP32.file
    onnx.save(model, str(path))
    return path


def ort_logits(path: Path, tokenizer, texts: Sequence[str], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    from models.tokenize import encode

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    topics, sentiments = [], []
    for start in range(0, len(texts), batch):
        ids, mask = encode(tokenizer, texts[start : start + batch])
        t, s = session.run(None, {"input_ids": ids, "attention_mask": mask})
        topics.append(t)
        sentiments.append(s)
    return np.concatenate(topics), np.concatenate(sentiments)


def parity(variant: str, ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]) -> Parity:
    diff = max(float(np.abs(ref[0] - got[0]).max()), float(np.abs(ref[1] - got[1]).max()))
    return Parity(
        variant=variant,
        max_abs_logit_diff=float(f"{diff:.3g}"),
        topic_agreement=float((ref[0].argmax(1) == got[0].argmax(1)).mean()),
        sentiment_agreement=float((ref[1].argmax(1) == got[1].argmax(1)).mean()),
        n=len(ref[0]),
    )


def export(checkpoint: Path, out: Path, dev: Sequence[str] = (), columns: Columns | None = None,
           keep_fp32: bool = True, fp16: bool = True, progress: Callable[[str], None] = _say,
           style_models: dict[str, Path] | None = None) -> dict:
    """Write `out/` with the files of models/variants.py's variants (INT8, FP16 unless `fp16=False`,
    FP32 unless `keep_fp32=False`), tokenizer.json, labels.json and card.json (with the sha256 of the
    first two's JSON content, which the runtime checks). `style_models` maps a style (models.text.STYLES,
    not the default) to an exported model directory that reads that style's texts instead: its model
    files are copied into `out/<style>.<8 hex digits>/` and the card names it (`style_models`). The inputs, --dev
    files included, are read first; the files are built in a hidden directory on `out`'s file system
    and put in place only when every step has succeeded (`_install`)."""
    from models.network import load_checkpoint
    from models.runtime import read_labels

    # A link is followed: its target is the directory written, and the build directory goes on the
    # target's file system, so nothing has to cross file systems at the end.
    checkpoint, out = Path(checkpoint), Path(os.path.realpath(out))
    # Every input is checked before minutes of exporting and quantising: a bad --dev path used to
    # fail only at the end, after the files were already in the target directory.
    for name in ("labels.json", "tokenizer.json", "train.json"):
        if not (checkpoint / name).is_file():
            raise DataError(f"{checkpoint}: no {name}; give a checkpoint made by `finsentry train`")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a directory")
    read_labels(checkpoint)  # what the runtime will demand of the copy in `out`
    parts = {style: _style_part(style, Path(d), checkpoint) for style, d in (style_models or {}).items()}
    meta = json.loads((checkpoint / "train.json").read_text())
    # A run with style markers recorded its social-post files: the parity texts are marked as it read them.
    social = (meta.get("config") or {}).get("social_files")
    dev_examples = [ex for path in dev for ex in styled(path, load_file(path, columns or Columns(), warn=None), social)]
    model, labels = load_checkpoint(checkpoint)
    max_tokens = int(meta.get("config", {}).get("max_tokens", 64))
    # A kill (SIGTERM, SIGHUP) while building is an exception too, so the build directory goes with it.
    with terminations_raise(), export_lock(out):
        _prune(out, progress)
        build = _make_build(out)
        try:
            card = _build(model, labels, meta, max_tokens, checkpoint, build, dev_examples, keep_fp32, fp16, progress)
            if parts:
                # A name of its own each time (`social.<8 hex>`): the new card.json, renamed into place
                # last, is the one moment the model directory switches to the new style model.
                card["style_models"] = {style: f"{style}.{secrets.token_hex(4)}" for style in parts}
                for style, part in parts.items():
                    shutil.copytree(part, build / card["style_models"][style],
                                    ignore=lambda _d, names: [n for n in names if n not in MODEL_FILES])
                (build / "card.json").write_text(json.dumps(card, indent=2))
            _install(build, out)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    progress(f"wrote {out} ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in card['files'].items())})")
    return card


def _style_part(style: str, directory: Path, checkpoint: Path) -> Path:
    """`directory`, resolved, once it is an exported model directory that can read `style` for the
    model exported from `checkpoint`: a style other than the default, the same labels, no style
    models of its own. Anything else is one DataError line."""
    from models.runtime import ModelError, read_card, read_labels

    if style not in STYLES or style == DEFAULT_STYLE:
        raise DataError(f"--style-model {style}={directory}: a style model is for "
                        f"{', '.join(s for s in STYLES if s != DEFAULT_STYLE)}; {DEFAULT_STYLE} is the exported model's own")
    for name in ("card.json", "labels.json", "tokenizer.json", INT8.file):
        if not (directory / name).is_file():
            raise DataError(f"--style-model {style}={directory}: no {name}; give a directory made by `finsentry export`")
    try:
        card = read_card(directory)
        labels = read_labels(directory)
    except ModelError as exc:
        raise DataError(f"--style-model {style}={directory}: {exc}") from None
    if card and card.get("style_models"):
        raise DataError(f"--style-model {style}={directory}: has style models of its own; give a plain model directory")
    if labels != read_labels(checkpoint):
        raise DataError(f"--style-model {style}={directory}: its labels differ from {checkpoint}'s; both must answer "
                        "with the same topics and sentiments")
    return Path(os.path.realpath(directory))


@contextmanager
def terminations_raise() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise SystemExit(128 + the signal) (the status a kill
    gives), so its `finally` and `except` clauses remove its temporary files, which a kill would leave;
    the handlers are restored after. A signal whose handler is not the default (ignored under nohup,
    or the program's own) is left alone, and so is every signal outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    saved = {}
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            saved[number] = signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _lock_path(out: Path) -> Path:
    """The lock file of exports into `out`: `.NAME.export-lock` beside it."""
    return out.parent / f".{out.name}.export-lock"


@contextmanager
def export_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive flock on `out`'s lock file (`_lock_path`; `out`'s parent is made if need be)
    while the block runs, so two exports into one --out never prune, build or install at once: the
    second is one DataError line. The lock file is removed as the lock is let go. Where no lock file can
    be made (a parent no one may write in), an existing `out` itself is locked; where neither can be,
    or the platform or file system has no flock, the export runs unlocked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    lock, held, fd = _lock_path(out), None, None
    cloexec = getattr(os, "O_CLOEXEC", 0)
    with suppress(OSError):
        out.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # a lock file its holder removed as we opened it is opened again
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | cloexec, 0o666)
        except PermissionError:  # another user's lock file: a read-only descriptor locks it as well
            try:
                fd = os.open(lock, os.O_RDONLY | cloexec)
            except OSError:
                break
        except OSError:
            break
        if not _flock(fcntl, fd, lock, out):
            held = lock  # no flock on this file system: unlocked (the file is removed after all the same)
            break
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except OSError:
            same = False
        if same:
            held = lock
            break
        os.close(fd)
        fd = None
    if fd is None:
        with suppress(OSError):
            fd = os.open(out, os.O_RDONLY | cloexec)
        if fd is not None:
            _flock(fcntl, fd, out, out)
            held = out
    try:
        yield
    finally:
        if fd is not None:
            if held == lock:
                with suppress(OSError):
                    os.unlink(lock)  # before the lock is let go: no one can have locked this file meanwhile
            os.close(fd)


def _flock(fcntl, fd: int, what: Path, out: Path) -> bool:
    """Lock `fd` exclusively: True when locked, False where the file system has no flock; another
    export holding it is one DataError line."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataError(f"--out {out}: another export into it is running (it holds {what}); wait for it to "
                        "finish, or give another --out") from None
    except OSError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as someone else
        return True
    return True


def _stale(build: Path, now: float) -> bool:
    """Whether `build` is a build directory an export made (it holds BUILD_MARKER) whose export no
    longer runs: its pid is not alive on this host, or it was started more than STALE_AFTER ago."""
    marker = build / BUILD_MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        started = float(info.get("started", marker.stat().st_mtime))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # no marker, or not ours
        return False
    if now - started > STALE_AFTER:
        return True
    return host == socket.gethostname() and pid != os.getpid() and not _pid_alive(pid)


def _prune(out: Path, progress: Callable[[str], None]) -> None:
    """Remove the build directories an earlier export left when it was killed: inside `out`
    `.export-<12 hex digits>`, beside it `.NAME.export-<12 hex digits>`, each only where it holds the
    marker an export writes (BUILD_MARKER) and its export no longer runs (`_stale`). Nothing else is
    touched: a user's `.export-notes`, another model's `.NAME.export-archive`, a running export's build."""
    now = time.time()
    places = [(out, BUILD_PREFIX), (out.parent, f".{out.name}{BUILD_PREFIX}")]
    for directory, prefix in places:
        try:
            names = sorted(os.listdir(directory))
        except OSError:  # not there (yet), or not readable: nothing of ours to prune
            continue
        for name in names:
            stale = directory / name
            if (name.startswith(prefix) and BUILD_SUFFIX.fullmatch(name[len(prefix):]) and stale.is_dir()
                    and not stale.is_symlink() and _stale(stale, now)):
                progress(f"removing {stale}: the build directory of an earlier export that did not finish")
                shutil.rmtree(stale, ignore_errors=True)


def _make_build(out: Path) -> Path:
    """The build directory, on `out`'s file system: inside `out` where it exists, else beside it; it
    holds BUILD_MARKER (this process's pid, the host, the time) until `_install`."""
    where = out if out.is_dir() else out.parent
    prefix = BUILD_PREFIX if out.is_dir() else f".{out.name}{BUILD_PREFIX}"
    try:
        where.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            build = where / f"{prefix}{secrets.token_hex(6)}"
            try:
                build.mkdir(mode=0o700)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(errno.EEXIST, "no free build directory name", str(where))
        try:
            (build / BUILD_MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                          "started": time.time()}), encoding="utf-8")
        except BaseException:  # without its marker no later export would prune it
            shutil.rmtree(build, ignore_errors=True)
            raise
        return build
    except OSError as exc:
        raise DataError(f"--out {out}: cannot write in {exc.filename or where} ({exc.strerror or exc}); check that "
                        "you may write there, or give another --out") from None


def _build(model, labels: dict, meta: dict, max_tokens: int, checkpoint: Path, out: Path, dev_examples: list,
           keep_fp32: bool, fp16: bool, progress: Callable[[str], None]) -> dict:
    """Write every file of the model directory into `out` (the build directory) and return the card."""
    import torch

    from models.runtime import content_sha256
    from models.tokenize import load_tokenizer
    from models.train import predict_logits

    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    (out / "labels.json").write_text(json.dumps(labels, indent=2))
    # What the runtime checks labels.json and tokenizer.json against (models/runtime.py check_hashes):
    # the sha256 of their JSON content, which a checkout's line endings do not change.
    hashes = {name: content_sha256(out / name) for name in ("labels.json", "tokenizer.json")}
    config = model.encoder.config

    tokenizer = load_tokenizer(out / "tokenizer.json", max_tokens)
    choose_on, judge_on = split_dev(model_texts(dev_examples))
    progress("reading the texts int8 is calibrated on")
    calibration, source = calibration_texts(meta, choose_on)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        progress("exporting to ONNX (opset 17, dynamic batch and sequence)")
        export_onnx(model, raw)
        progress("fusing attention with ONNX Runtime's transformer optimizer")
        optimized = fuse(raw, config.num_attention_heads, config.hidden_size)
        fused_ops = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        fp32 = out / FP32.file
        optimized.save_model_to_file(str(fp32))
        if fp16:
            progress("converting to fp16 for GPU")
            optimized.convert_float_to_float16(keep_io_types=True)
            optimized.save_model_to_file(str(out / FP16.file))
    quantized, recheck = int8_stage(out, fp32, tokenizer, calibration, source, {"max_tokens": max_tokens, "sha256": hashes},
                                    fp16, progress)
    parities: list[Parity] = []
    if judge_on:
        texts = judge_on
        variants = [INT8.name] + ([INT8_RECHECK.name] if recheck else [])
        held = " (the half int8 was not calibrated on)" if choose_on else ""
        progress(f"parity on {len(texts)} dev texts{held}: torch vs fp32 vs {' vs '.join(variants)}")
        with torch.inference_mode():
            ref = predict_logits(model, tokenizer, texts, "cpu")
        parities = [parity(FP32.name, ref, ort_logits(fp32, tokenizer, texts))]
        say_parity(parities[0], progress)
        parities += variant_parities(out, ref, texts, variants, progress)
    if not keep_fp32:
        fp32.unlink()

    card = {
        "name": "finsentry-topic-sentiment",
        "version": f"{datetime.now(UTC):%Y.%m.%d}-{meta.get('steps', 0)}",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": meta.get("base"),
        "data": meta.get("data"),
        "data_sources": attributions(d["path"] for d in (meta.get("data") or {}).get("train", [])),
        "train_config": meta.get("config"),
        "averaged": meta.get("averaged"),
        "train_seconds": meta.get("seconds"),
        "dev_metrics_torch": meta.get("dev_metrics"),
        "max_tokens": max_tokens,
        "normalisation_version": NORMALISATION_VERSION,
        "style_markers": STYLE_MARKERS if (meta.get("config") or {}).get("social_files") is not None else None,
        "default_variant": INT8_RECHECK.name if recheck else INT8.name,  # on a CPU; fp16 on CUDA
        "export": {
            "opset": OPSET,
            "fused_operators": fused_ops,
            "quantization": quantized.summary(source),
            "fp16": f"{FP16.file}, fp16 weights with fp32 inputs/outputs, for CUDA" if fp16 else None,
            "parity": [asdict(p) for p in parities],
        },
        "recheck": recheck,
        "sha256": hashes,
        "files": {f.name: f.stat().st_size for f in sorted(out.glob("*.onnx"))},
        "op_types_int8": dict(Counter(op_types(out / INT8.file)).most_common(12)),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return card


def _install(build: Path, out: Path) -> None:
    """Put the finished build directory's files in place as `out`. A new `out` is the build directory
    itself, renamed beside it (the same file system), with the permissions a new directory gets (the
    umask's, not mkdtemp's 0700). Into an existing directory (an empty one, a mount point, the current
    directory: never removed or renamed over) each file is moved by an atomic rename from the build
    directory inside it, card.json last, then any model file an earlier export left that this one did
    not write is removed, and so is each style-model directory the replaced card.json named (the new
    one has a name of its own, so the card's rename is the switch). Other files in `out` stay. SIGTERM, SIGHUP and Ctrl-C wait until the moves are done
    (`terminations_deferred`), so a catchable signal never leaves a directory half replaced. An
    OSError is one DataError line naming the path."""
    moved: list[str] = []
    try:
        with terminations_deferred():
            (build / BUILD_MARKER).unlink(missing_ok=True)  # the build is finished: not a model file
            if build.parent != out:
                os.chmod(build, 0o777 & ~_umask())
                os.rename(build, out)
                return
            made = sorted(p.name for p in build.iterdir())
            before = _style_dirs(out)
            for name in [n for n in made if n != "card.json"] + ["card.json"]:
                os.replace(build / name, out / name)
                moved.append(name)
            for name in sorted(MODEL_FILES - set(made)):
                (out / name).unlink(missing_ok=True)
            for name in sorted(before - set(made)):  # the style models the replaced card named
                shutil.rmtree(out / name, ignore_errors=True)
    except OSError as exc:
        done = (f"; {len(moved)} of its files ({', '.join(moved)}) were already replaced, so re-run the export"
                if moved else "; nothing in it was changed")
        raise DataError(f"--out {out}: cannot put the exported files in place ({exc.strerror or exc}"
                        f"{': ' + str(exc.filename) if exc.filename else ''}){done}") from None


def _style_dirs(out: Path) -> set[str]:
    """The style-model directories `out`'s card.json names (none when it has no readable card)."""
    from models.runtime import ModelError, read_card

    try:
        card = read_card(out) or {}
    except (ModelError, OSError):
        return set()
    return {name for name in (card.get("style_models") or {}).values() if (out / name).is_dir()}


@contextmanager
def terminations_deferred() -> Iterator[None]:
    """While the block runs, SIGTERM, SIGHUP and SIGINT (Ctrl-C) are only recorded (where they are not ignored, and only
    in the main thread); once it is over the handlers are restored and the first signal recorded is
    acted on as it would have been: the saved handler is run (terminations_raise's: SystemExit), or the
    default action is taken by raising the signal again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    saved = {}
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (signal.SIG_IGN, None):
            saved[number] = signal.signal(number, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        if caught:
            handler = saved[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            else:
                signal.raise_signal(caught[0])


# The fewest --dev texts the re-check margin is chosen on (and as many judge it); fewer: training texts.
MIN_CHOOSE_TEXTS = 200


def calibration_texts(meta: dict, dev_texts: Sequence[str] = (), limit: int = 3000) -> tuple[list[str], str]:
    """The unlabelled texts int8 is calibrated on, and where they came from: `dev_texts` (half the
    --dev texts) where there are any, else a seeded sample of the checkpoint's training texts; none
    (and why) when the training files recorded in train.json are not here."""
    if dev_texts:
        return list(dev_texts), DEV_HALF
    columns = Columns(**(meta.get("config") or {}).get("columns", {}))
    paths = [Path(d["path"]) for d in (meta.get("data") or {}).get("train", [])]
    missing = [str(p) for p in paths if not p.is_file()]
    if not paths or missing:
        return [], f"the training files are not here: {', '.join(missing) or 'none recorded'}"
    social = (meta.get("config") or {}).get("social_files")
    texts = model_texts([ex for path in paths for ex in styled(path, load_file(path, columns, warn=None), social)])
    return random.Random(0).sample(texts, min(limit, len(texts))), "training files, seeded sample"


# Where the calibration texts came from, when they are `split_dev`'s first half.
DEV_HALF = "every other --dev text (seeded order), labels unused; parity is on the others"


def split_dev(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """The --dev texts in a seeded order, halved: every other one to calibrate int8 on (its smoothing,
    then its re-check margin; labels unused: only agreement with fp32) and the rest to judge parity
    on, so half stays an unbiased check. Fewer than 2 * MIN_CHOOSE_TEXTS: none to calibrate on (the
    training texts are, `calibration_texts`) and all to judge on. Chosen on training texts, which a
    long run has memorised with wide margins, the margin re-ran too few unseen texts (run 25: 0.25,
    99.1% dev agreement)."""
    shuffled = random.Random(0).sample(list(texts), len(texts))
    return (shuffled[::2], shuffled[1::2]) if len(shuffled) >= 2 * MIN_CHOOSE_TEXTS else ([], shuffled)


def int8_stage(out: Path, fp32: Path, tokenizer, calibration: Sequence[str], source: str, card: dict,
               recheck: bool, progress: Callable[[str], None]) -> tuple[Quantized, dict | None]:
    """Quantise `fp32` into `out`'s `model.onnx` on the calibration texts and, where `recheck` (the
    directory has `model.fp16.onnx`) and there are texts, choose its re-check margin; `card` is what
    the runtime must read to load `out` meanwhile (max_tokens, sha256, files), written provisionally."""
    used = min(len(calibration), CALIBRATION_TEXTS)
    progress(f"quantising every MatMul to per-channel int8, inputs smoothed on {used} texts ({source})" if used else
             f"quantising to per-channel int8, not smoothed, feed-forward down-projections kept fp32 ({source})")
    quantized = quantize_int8(fp32, out / INT8.file, tokenizer, calibration)
    (out / "card.json").write_text(json.dumps(card))
    margin = choose_recheck(out, fp32, tokenizer, calibration, source, progress) if recheck and calibration else None
    if recheck and not calibration:
        progress(f"no int8 re-check: {source}")
    (out / "card.json").write_text(json.dumps({**card, "recheck": margin}))
    return quantized, margin


def variant_parities(out: Path, ref: tuple[np.ndarray, np.ndarray], texts: Sequence[str], variants: Sequence[str],
                     progress: Callable[[str], None]) -> list[Parity]:
    """Each variant of `out` against the reference logits `ref` on `texts`, through the runtime (one
    text per run, as a CPU worker runs them), each reported in one progress line."""
    from models.runtime import Classifier

    parities = [parity(v, ref, Classifier.load(out, device="cpu", variant=v).all_logits(texts)) for v in variants]
    for p in parities:
        say_parity(p, progress)
    return parities


def say_parity(p: Parity, progress: Callable[[str], None]) -> None:
    progress(f"  {p.variant}: max |logit diff| {p.max_abs_logit_diff:.4g}, agreement topic "
             f"{p.topic_agreement:.4f} sentiment {p.sentiment_agreement:.4f}")


def choose_recheck(out: Path, fp32: Path, tokenizer, texts: Sequence[str], source: str,
                    progress: Callable[[str], None]) -> dict:
    """The int8 re-check margin (models/recheck.py), chosen on `texts` (from `calibration_texts`)."""
    from models.recheck import TARGET, agreement_after_recheck, choose_margin
    from models.runtime import Classifier

    progress(f"choosing the int8 re-check margin on {len(texts)} texts ({source})")
    ref = ort_logits(fp32, tokenizer, texts)
    int8 = Classifier.load(out, device="cpu", variant=INT8.name).all_logits(texts)
    margin = choose_margin(int8, ref)
    topic, sentiment, share = agreement_after_recheck(int8, ref, margin)
    progress(f"  margin {margin}: {share:.1%} of texts re-run, agreement with fp32 topic {topic:.4f} "
             f"sentiment {sentiment:.4f}")
    return {"margin": margin, "file": INT8_RECHECK.recheck_file, "target_agreement": TARGET,
            "chosen_on": {"texts": len(texts), "source": source,
                          "topic_agreement": topic, "sentiment_agreement": sentiment, "rerun_share": share}}


def op_types(path: Path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]
