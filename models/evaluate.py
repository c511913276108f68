"""Evaluate a torch checkpoint or an ONNX model directory on labelled files.

Both paths normalise and tokenise identically, so their numbers are comparable and the difference
between them is the cost of export and quantisation alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.data import Columns, DataError, Example, LabelMaps, load_file, model_texts
from models.metrics import HeadReport, report, softmax
from models.runtime import model_labels


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
    return LabelMaps.from_json(model_labels(model_path))


def logits_for(model_path: Path, texts: list[str], variant: str | None, device: str) -> tuple[LabelMaps, np.ndarray, np.ndarray]:
    if is_checkpoint(model_path):
        from models.network import load_checkpoint
        from models.tokenize import load_tokenizer
        from models.train import predict_logits

        model, labels = load_checkpoint(model_path)
        tokenizer = load_tokenizer(model_path / "tokenizer.json")
        t, s = predict_logits(model, tokenizer, texts, "cpu" if device == "auto" else device)
        return LabelMaps.from_json(labels), t, s
    from models.runtime import Classifier

    clf = Classifier.load(model_path, device=device, variant=variant)  # type: ignore[arg-type]
    t_out, s_out = clf.all_logits(texts)
    return LabelMaps(topics=clf.topics, sentiments=clf.sentiments), t_out, s_out


def evaluate(model_path: str | Path, data: Sequence[str], columns: Columns | None = None,
             variant: str | None = None, device: str = "cpu") -> dict[str, object]:
    model_path, columns = Path(model_path), columns or Columns()
    if not model_path.is_dir():
        raise DataError(f"{model_path}: no such model directory")
    result: dict[str, object] = {"model": str(model_path), "kind": "torch" if is_checkpoint(model_path) else "onnx",
                                 "variant": variant, "files": {}}
    files = [(str(path), load_file(path, columns)) for path in data]
    labels = labels_of(model_path)
    labels.check_files(files)
    examples: list[Example] = []
    spans: list[tuple[str, int, int]] = []
    for path, loaded in files:
        spans.append((path, len(examples), len(examples) + len(loaded)))
        examples.extend(loaded)
    _, t_logits, s_logits = logits_for(model_path, model_texts(examples), variant, device)
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
    return "\n".join(lines)


def table(result: dict[str, object]) -> str:
    """A readable summary: headline metrics, then per-class precision/recall/F1 per head."""
    lines = [f"model {result['model']} ({result['kind']}{', ' + str(result['variant']) if result['variant'] else ''})"]
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
