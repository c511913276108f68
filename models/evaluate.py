"""Evaluate a torch checkpoint or an ONNX model directory on labelled files.

Both paths normalise and tokenise identically, so their numbers are comparable and the difference
between them is the cost of export and quantisation alone.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.data import Columns, DataError, Example, LabelMaps, check_social_files, file_style, load_file, own_style
from models.metrics import HeadReport, report, softmax
from models.runtime import read_card, read_labels, uses_style_markers
from models.text import DEFAULT_STYLE, for_model

# Texts scored between progress reports; a multiple of every batch size the runtime and the torch
# path use (1, 128, 256), so chunks of the length-sorted texts make the same batches as one call.
CHUNK = 1024
# Off a terminal (a log, a pipe), a progress line at most this often; a short run prints none.
PROGRESS_EVERY_S = 30.0


def _gold(examples: Sequence[Example], labels: LabelMaps) -> tuple[np.ndarray, np.ndarray]:
    t = {n: i for i, n in enumerate(labels.topics)}
    s = {n: i for i, n in enumerate(labels.sentiments)}
    return (np.array([t.get(e.topic, -1) if e.topic else -1 for e in examples]),
            np.array([s.get(e.sentiment, -1) if e.sentiment else -1 for e in examples]))


def is_checkpoint(path: Path) -> bool:
    return (Path(path) / "heads.pt").is_file()


def labels_of(model_path: Path) -> LabelMaps:
    """The label map inference will use, from the labels.json that torch checkpoints and ONNX exports
    both keep, read before any inference so that a bad label fails in seconds."""
    if not (model_path / "labels.json").is_file():
        raise DataError(f"{model_path}: no labels.json; give a directory made by `finsentry train` or `finsentry export`")
    return LabelMaps.from_json(read_labels(model_path))


class Progress:
    """Texts scored so far, on stderr: on a terminal one line redrawn after every chunk; elsewhere a
    line every PROGRESS_EVERY_S seconds, as `finsentry train` reports its steps."""

    def __init__(self, total: int, tty: bool | None = None) -> None:
        self.total, self.tty = total, sys.stderr.isatty() if tty is None else tty
        self.started = self.last = time.monotonic()
        self.drawn = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        rate = done / max(1e-9, now - self.started)
        line = f"scored {done}/{self.total} texts ({rate:.0f}/s, eta {(self.total - done) / max(rate, 1e-9) / 60:.1f}m)"
        if self.tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
            self.drawn = True
        elif now - self.last >= PROGRESS_EVERY_S and done < self.total:
            print(line, file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.drawn:
            print(file=sys.stderr, flush=True)


def _in_chunks(score: Callable[[list[int]], tuple[np.ndarray, np.ndarray]], inputs: list[str],
               progress: Callable[[int], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """`score` over the indices of length-sorted chunks of CHUNK `inputs`, reporting after each;
    logits in input order."""
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))  # as the runtime and torch paths sort
    topic: np.ndarray | None = None
    sentiment: np.ndarray | None = None
    for start in range(0, len(order), CHUNK):
        idx = order[start : start + CHUNK]
        t, s = score(idx)
        if topic is None or sentiment is None:
            topic = np.zeros((len(inputs), t.shape[1]), dtype=t.dtype)
            sentiment = np.zeros((len(inputs), s.shape[1]), dtype=s.dtype)
        topic[idx], sentiment[idx] = t, s
        if progress is not None:
            progress(start + len(idx))
    assert topic is not None and sentiment is not None, "no texts to score"
    return topic, sentiment


def logits_for(model_path: Path, texts: list[str], variant: str | None, device: str,
               progress: Callable[[int], None] | None = None, info: dict[str, object] | None = None,
               styles: Sequence[str | None] | None = None) -> tuple[LabelMaps, np.ndarray, np.ndarray]:
    """(labels, topic logits, sentiment logits) of the raw `texts` in input order, each normalised
    as the model reads it in its style (`styles`, one per text; None: each DEFAULT_STYLE): after its
    style's marker for a model trained with them, by the style's own model where the model
    directory has one (card.json `style_models`). `info`, where given, gets what ran: the model's
    version, the variant (int8+recheck, ...; "torch" for a checkpoint), the ONNX Runtime provider
    and how many texts the re-check re-ran."""
    info = {} if info is None else info
    chosen = list(styles) if styles is not None else [None] * len(texts)
    if is_checkpoint(model_path):
        from models.network import load_checkpoint
        from models.tokenize import load_tokenizer
        from models.train import predict_logits

        model, labels = load_checkpoint(model_path)
        tokenizer = load_tokenizer(model_path / "tokenizer.json")
        run_on = "cpu" if device == "auto" else device
        marked = uses_style_markers(model_path)
        inputs = [for_model(t, (s or DEFAULT_STYLE) if marked else None) for t, s in zip(texts, chosen, strict=True)]
        t, s = _in_chunks(lambda idx: predict_logits(model, tokenizer, [inputs[i] for i in idx], run_on), inputs, progress)
        meta = {}
        if (model_path / "train.json").is_file():
            meta = json.loads((model_path / "train.json").read_text())
        info.update(version=meta.get("version") if isinstance(meta, dict) else None, variant="torch", provider=run_on,
                    reads_styles=marked)
        return LabelMaps.from_json(labels), t, s
    from models.runtime import Classifier

    clf = Classifier.load(model_path, device=device, variant=variant)  # type: ignore[arg-type]

    def score(idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return clf.style_logits([texts[i] for i in idx], [chosen[i] for i in idx])

    # Raw lengths order the chunks: style_logits normalises each text for its own model, and the
    # runtime sorts every chunk by that length again.
    t_out, s_out = _in_chunks(score, texts, progress)
    info.update(version=clf.version, variant=clf.variant, provider=clf.provider, rechecked=clf.rechecked,
                reads_styles=clf.reads_markers or bool(clf.by_style))
    return LabelMaps(topics=clf.topics, sentiments=clf.sentiments), t_out, s_out


def _warn(message: str) -> None:
    print(f"finsentry: warning: {message}", file=sys.stderr, flush=True)


def evaluate(model_path: str | Path, data: Sequence[str], columns: Columns | None = None,
             variant: str | None = None, device: str = "cpu", progress: bool | None = None,
             social_files: Sequence[str] = ()) -> dict[str, object]:
    """The report of `finsentry evaluate`. `progress` reports the texts scored on stderr (None: on
    a terminal redrawn, elsewhere every PROGRESS_EVERY_S seconds; False: never). A model trained with
    style markers reads the `social_files` among `data` as social posts and the rest as newswire
    (the report's "styles"); one without them reads every file alike."""
    model_path, columns = Path(model_path), columns or Columns()
    if not model_path.is_dir():
        raise DataError(f"{model_path}: no such model directory")
    # "variant" becomes the one that ran (the default for the device when none was asked for).
    result: dict[str, object] = {"model": str(model_path), "kind": "torch" if is_checkpoint(model_path) else "onnx",
                                 "version": None, "variant": variant, "variant_requested": variant, "files": {}}
    check_social_files(social_files, data, "--data")
    labels = labels_of(model_path)
    files = [(str(path), load_file(path, columns, warn=_warn)) for path in data]
    labels.check_files(files)
    style_of = {path: file_style(path, social_files) for path, _ in files}
    examples: list[Example] = []
    spans: list[tuple[str, int, int]] = []
    for path, loaded in files:
        spans.append((path, len(examples), len(examples) + len(loaded)))
        examples.extend(loaded)
    texts = [ex.text for ex in examples]
    # A row's own style counts (and is checked) only for a model that reads styles apart.
    reads = uses_style_markers(model_path) or bool((read_card(model_path) or {}).get("style_models"))
    own = [own_style(path, ex) if reads else None for path, start, end in spans for ex in examples[start:end]]
    styles = [mine or style_of[path] for (path, start, end) in spans for mine in own[start:end]]
    shown = Progress(len(texts), tty=None if progress is None else progress) if progress is not False else None
    info: dict[str, object] = {}
    try:
        _, t_logits, s_logits = logits_for(model_path, texts, variant, device, shown, info, styles)
    finally:
        if shown is not None:
            shown.close()
    result.update(info)
    topic_gold, sent_gold = _gold(examples, labels)

    def heads_for(start: int, end: int) -> dict[str, object]:
        heads: dict[str, HeadReport] = {}
        for head, gold, logits, names in (("topic", topic_gold, t_logits, labels.topics),
                                          ("sentiment", sent_gold, s_logits, labels.sentiments)):
            keep = gold[start:end] >= 0
            if keep.any():
                heads[head] = report(names, gold[start:end][keep], softmax(logits[start:end][keep]))
        return {h: r.to_json() for h, r in heads.items()}

    # Every file on its own (a tweet file and a newswire file are different styles and must not
    # hide each other), then all of them together.
    result["files"] = {path: heads_for(start, end) for path, start, end in spans}
    # How each file was read: only a model with style markers or style models reads styles apart.
    # A file read in one style says which (its rows' own, where they all name it); in several, "by row".
    read_as = {}
    for path, start, end in spans:
        used = {mine or style_of[path] for mine in own[start:end]}
        read_as[path] = used.pop() if len(used) == 1 else "by row" if used else style_of[path]
    result["styles"] = read_as if reads else {path: None for path in style_of}
    result["heads"] = heads_for(0, len(examples))
    return result


def _short(path: str, width: int = 44) -> str:
    p = Path(path)
    name = f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    return name if len(name) <= width else "..." + name[-(width - 3):]


def by_source(result: dict[str, object]) -> str:
    """One row per file: accuracy and macro-F1 of each head, and the negative class's recall and precision."""
    header = (f"{'file':<44} {'n topic':>7} {'topic acc':>9} {'topic F1':>8} {'n sent':>6} {'sent acc':>8} "
              f"{'sent F1':>7} {'neg rec':>7} {'neg prec':>8}")
    lines = [header, "-" * len(header)]
    files = dict(result["files"])  # type: ignore[arg-type]
    if len(files) > 1:
        files["all files"] = result["heads"]
    for path, heads in files.items():
        t, s = heads.get("topic"), heads.get("sentiment")
        neg = next((c for c in s["classes"] if c["label"] == "negative"), None) if s else None

        def f(v: object, spec: str) -> str:
            return format(v, spec) if v is not None else "-"

        lines.append(f"{_short(path):<44} {f(t and t['n'], '>7'):>7} {f(t and t['accuracy'], '.4f'):>9} "
                     f"{f(t and t['macro_f1'], '.4f'):>8} {f(s and s['n'], '>6'):>6} {f(s and s['accuracy'], '.4f'):>8} "
                     f"{f(s and s['macro_f1'], '.4f'):>7} {f(neg and neg['recall'], '.3f'):>7} "
                     f"{f(neg and neg['precision'], '.3f'):>8}")
    lines.append(_model_line(result))
    return "\n".join(lines)


def _model_line(result: dict[str, object]) -> str:
    """"model DIR (onnx, version V, int8+recheck on CPUExecutionProvider)": what produced the numbers."""
    parts = [str(result["kind"])]
    if result.get("version") is not None:
        parts.append(f"version {result['version']}")
    if result.get("variant"):
        parts.append(str(result["variant"]) + (f" on {result['provider']}" if result.get("provider") else ""))
    if result.get("rechecked"):
        parts.append(f"re-check re-ran {result['rechecked']}")
    return f"model {result['model']} ({', '.join(parts)})"


def table(result: dict[str, object]) -> str:
    """A readable summary: headline metrics, then per-class precision/recall/F1 per head."""
    lines = [_model_line(result)]
    files = dict(result.get("files") or {})  # type: ignore[arg-type]
    sections = list(files.items()) + ([("all files", result["heads"])] if len(files) > 1 else [])
    if not sections:
        sections = [("", result["heads"])]
    for name, heads in sections:
        if name:
            lines.append(f"\n== {name}")
        _head_tables(lines, heads)  # type: ignore[arg-type]
    return "\n".join(lines)


def _head_tables(lines: list[str], heads: dict[str, dict]) -> None:
    for head, r in heads.items():
        lines.append(f"\n{head}: n={r['n']} accuracy={r['accuracy']:.4f} macro-F1={r['macro_f1']:.4f} ECE={r['ece']:.4f}")
        lines.append(f"  {'class':<30} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>6}")
        for c in r["classes"]:
            lines.append(f"  {c['label'][:30]:<30} {c['precision']:>6.3f} {c['recall']:>6.3f} {c['f1']:>6.3f} {c['support']:>6}")
        lines.append("  confusion (rows gold, columns predicted):")
        for c, row in zip(r["classes"], r["confusion"]):
            lines.append(f"  {c['label'][:14]:<14} " + " ".join(f"{v:>4}" for v in row))
