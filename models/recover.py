"""Recover a torch checkpoint from an exported model directory's fp16 ONNX graph.

The shipped default was exported without its torch checkpoint. To continue fine-tuning it (on new
data, at a fraction of the cost of training from the base encoder again) its weights are read back
from `model.fp16.onnx`: the fused graph keeps every parameter, named or in an order the exporter
fixes (per layer: fused Q|K|V of Attention, then the attention-output, intermediate and output
MatMuls, stored transposed). fp16 weights lose a little precision; `recover` reports the largest
logit difference against the ONNX model so a wrong mapping never passes silently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from models.runtime import model_labels
from models.variants import FP16


def recover(model_dir: Path, out: Path, base: str = "all-MiniLM-L6-v2") -> float:
    import onnx
    import torch
    from onnx import numpy_helper

    from models.network import build, save_checkpoint

    model_dir, out = Path(model_dir), Path(out)
    graph = onnx.load(str(model_dir / FP16.file)).graph
    init = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    labels = model_labels(model_dir)
    model = build(base, len(labels["topic"]), len(labels["sentiment"]))
    state: dict[str, np.ndarray] = {}
    for name, value in init.items():
        if name.startswith("inner."):
            state[name[len("inner."):]] = value
    hidden = model.encoder.config.hidden_size
    for node in graph.node:
        if node.op_type == "Attention":
            layer = int(node.name.rsplit("_", 1)[1])
            w = init[node.input[1]]
            b = init[node.input[2]]
            for k, part in enumerate(("query", "key", "value")):
                prefix = f"encoder.encoder.layer.{layer}.attention.self.{part}"
                state[f"{prefix}.weight"] = w[:, k * hidden:(k + 1) * hidden].T
                state[f"{prefix}.bias"] = b[k * hidden:(k + 1) * hidden]
        elif node.op_type == "MatMul":
            m = re.search(r"layer\.(\d+)/(attention/output|intermediate|output)/dense/MatMul$", node.name)
            if m:
                key = f"encoder.encoder.layer.{m.group(1)}.{m.group(2).replace('/', '.')}.dense.weight"
                state[key] = init[node.input[1]].T
    own = model.state_dict()
    # The pooler is not used (mean pooling) and so not exported; it keeps the base weights.
    missing = [k for k in own if k not in state and not k.endswith("position_ids") and ".pooler." not in k]
    if missing:
        raise ValueError(f"{model_dir}: could not recover {missing[:5]}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items() if k in own},
                          strict=False)
    model.eval()
    card = json.loads((model_dir / "card.json").read_text())
    (out).mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    meta = {"recovered_from": str(model_dir), "version": card.get("version"), "base": base,
            "config": {"max_tokens": card.get("max_tokens", 64),
                       # A model trained with style markers reads them after recovery too (models/text.py).
                       **({"social_files": (card.get("train_config") or {}).get("social_files") or []}
                          if card.get("style_markers") is not None else {})},
            "data": card.get("data"),
            "dev_metrics": card.get("dev_metrics_torch"), "steps": 0}
    save_checkpoint(model, out, labels, meta)
    return _check(model, model_dir, out)


def _check(model, model_dir: Path, out: Path) -> float:
    import onnxruntime as ort
    import torch

    from models.tokenize import encode, load_tokenizer

    texts = ["Northwind Traders net loss narrowed", "US jobless claims fall more than expected",
             "$AAPL beats estimates, shares jump", "Oil prices slump as OPEC signals higher output"]
    tok = load_tokenizer(out / "tokenizer.json")
    ids, mask = encode(tok, texts)
    session = ort.InferenceSession(str(model_dir / FP16.file), providers=["CPUExecutionProvider"])
    t_ref, s_ref = session.run(None, {"input_ids": ids, "attention_mask": mask})
    with torch.inference_mode():
        t, s = model(torch.from_numpy(ids), torch.from_numpy(mask))
    return float(max(np.abs(t.numpy() - t_ref).max(), np.abs(s.numpy() - s_ref).max()))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m models.recover", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="an exported model directory with model.fp16.onnx (e.g. models/default)")
    parser.add_argument("out", type=Path, help="checkpoint directory to write")
    args = parser.parse_args(argv)
    if not (args.model_dir / FP16.file).is_file():
        parser.exit(2, f"models.recover: {args.model_dir / FP16.file} not found: give an exported model directory\n")
    print(f"max |logit diff| vs the fp16 ONNX model: {recover(args.model_dir, args.out):.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
