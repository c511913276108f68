"""Per-channel smoothing of the encoder's int8 inputs (SmoothQuant), so every MatMul can run int8.

Dynamic int8 quantises a MatMul's input with one scale per run (per text on a CPU). A few input
channels of a BERT-family encoder carry values tens of times larger than the rest, above all at the
feed-forward down-projections, so one scale per tensor leaves the other channels a handful of levels:
quantised as they were, the six down-projections cost the fine-tuned model 1-2 points of label
agreement with fp32, which is why exports before this module kept them fp32 (and still do when there
are no calibration texts), at 35-40% of a CPU run's time.

Smoothing divides input channel j by s_j and multiplies row j of the weight by s_j. The fp32 product
is unchanged; the outliers move into the weights, which are quantised per output channel anyway.
s_j = max|x_j|^alpha / max_k|w_jk|^(1 - alpha) (Xiao et al., "SmoothQuant", ICML 2023,
arXiv:2211.10438), with max|x_j| from calibration texts, each run alone as the CPU runtime runs them.
alpha is chosen per MatMul among ALPHAS: the one whose simulated int8 product (u8 activations with one
scale per text, s8 weights per output channel, as ONNX Runtime's dynamic quantisation does) is
closest to the fp32 product on those texts, or none where no alpha beats leaving the input as it is.
The division is one `Mul` by 1/s before the MatMul (the input may also feed a residual connection,
so it cannot be folded into the layer norm before it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Candidate smoothing strengths; 0.5 is the paper's default, larger moves more of the range into
# the weights (the down-projections' outliers need 0.7-0.95 in this encoder).
ALPHAS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
# Bounds on s, so that a channel that is always zero (or a zero weight row) does not become inf.
S_RANGE = (1e-3, 1e3)


@dataclass(frozen=True, slots=True)
class Smoothed:
    """One MatMul's choice: `alpha` (None: its input left as it is) and the simulated int8 error with
    it relative to leaving the input unsmoothed (sum of squared differences from the fp32 product;
    1.0 = no better)."""

    node: str
    alpha: float | None
    error_ratio: float


def _is_target(node, weights: dict, uses: Counter) -> bool:
    return (node.op_type in ("MatMul", "Attention") and len(node.input) > 1 and node.input[1] in weights
            and len(weights[node.input[1]].dims) == 2 and uses[node.input[1]] == 1)


def targets(model) -> list:
    """The nodes whose input is smoothed: MatMul with a 2-D initializer of its own as second input
    (the encoder's projections) and the fused Attention (its QKV weight). The heads' Gemms are
    quantised as they are; a weight shared by two nodes is left alone."""
    weights = {t.name: t for t in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    return [node for node in model.graph.node if _is_target(node, weights, uses)]


def node_key(node, index: int, seen: Counter) -> str:
    """A name for the node at `index` that is unique in its graph: its own where it has one no
    other node shares, else `<op type>_<index>` (with `_` added until no node has that name)."""
    if node.name and seen[node.name] == 1:
        return node.name
    key = f"{node.op_type}_{index}"
    while seen[key]:
        key += "_"
    return key


def input_samples(model, tokenizer, texts: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Each target's input for each text run alone: {tensor name: [array [tokens, channels] per text]}.
    Memory: 4 bytes per channel per token per target input (MiniLM-L6: 64 KB per token row)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from models.tokenize import encode

    probe = type(model)()
    probe.CopyFrom(model)
    names = sorted({node.input[0] for node in targets(model)})
    present = {o.name for o in probe.graph.output} | {i.name for i in probe.graph.input}
    probe.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                              for n in names if n not in present)
    options = ort.SessionOptions()
    # Unoptimised, so the probed tensors are the graph's own and not fused away.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    samples: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for text in texts:
        ids, mask = encode(tokenizer, [text])
        feeds = {"input_ids": ids, "attention_mask": mask}
        got = {**feeds, **dict(zip(outputs, session.run(None, feeds), strict=True))}
        for n in names:
            samples[n].append(np.asarray(got[n], dtype=np.float32).reshape(-1, got[n].shape[-1]))
    return samples


def int8_activations(x: np.ndarray) -> np.ndarray:
    """`x` as dynamic int8 rounds one run's input: u8, one scale and zero point for the whole tensor
    over [min(x, 0), max(x, 0)] (ONNX Runtime's DynamicQuantizeLinear)."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255 or 1.0
    zero = np.round(-lo / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def int8_weights(w: np.ndarray) -> np.ndarray:
    """`w` [in, out] as per-channel s8 rounds it: one symmetric scale per output channel (column)."""
    scale = np.abs(w).max(axis=0) / 127
    scale[scale == 0] = 1.0
    return np.round(w / scale) * scale


def scales(x_max: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """s [in channels] for inputs whose largest magnitudes per channel are `x_max` [in] and weight
    `w` [in, out]; bounded by S_RANGE."""
    w_max = np.abs(w).max(axis=1)
    return np.clip(np.maximum(x_max, 1e-8) ** alpha / np.maximum(w_max, 1e-8) ** (1 - alpha), *S_RANGE)


def choose(xs: Sequence[np.ndarray], w: np.ndarray,
           alphas: Sequence[float] = ALPHAS) -> tuple[float | None, float, np.ndarray | None]:
    """For inputs `xs` (one array [tokens, in] per text, each quantised with its own scale, as one run
    is) and weight `w` [in, out]: the alpha whose simulated int8 product is closest to fp32 (None where
    none beats the unsmoothed input), its error relative to the unsmoothed one, and its scales s [in]."""
    x_max = np.max([np.abs(x).max(axis=0) for x in xs], axis=0)
    exact = [x @ w for x in xs]

    def error(s: np.ndarray | None) -> float:
        wq = int8_weights(w if s is None else w * s[:, None])
        return sum(float(((int8_activations(x if s is None else x / s) @ wq - e) ** 2).sum())
                   for x, e in zip(xs, exact, strict=True))

    plain = error(None)
    best: tuple[float | None, float, np.ndarray | None] = (None, plain, None)
    for alpha in alphas:
        s = scales(x_max, w, alpha)
        e = error(s)
        if e < best[1]:
            best = (alpha, e, s)
    return best[0], (best[1] / plain if plain else 1.0), best[2]


def smooth(source: Path, target: Path, tokenizer, texts: Sequence[str]) -> list[Smoothed]:
    """Write `source`'s fp32 graph to `target` with each target's input smoothed (the fp32 function is
    unchanged up to rounding); returns each target's choice, in graph order, named by `node_key`."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    samples = input_samples(model, tokenizer, texts)
    weights = {t.name: t for t in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    seen = Counter(node.name for node in model.graph.node)
    chosen: list[Smoothed] = []
    nodes = []
    for index, node in enumerate(model.graph.node):
        if _is_target(node, weights, uses):
            key = node_key(node, index, seen)
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
            alpha, ratio, s = choose(samples[node.input[0]], w)
            chosen.append(Smoothed(key, alpha, round(ratio, 4)))
            if s is not None:
                weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None].astype(np.float32),
                                                                        node.input[1]))
                inverse, smoothed = f"{key}/smooth_inverse", f"{node.input[0]}/smoothed_for/{key}"
                model.graph.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), inverse))
                nodes.append(helper.make_node("Mul", [node.input[0], inverse], [smoothed], name=f"{key}/smooth"))
                node.input[0] = smoothed
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(target))
    return chosen
