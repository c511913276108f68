"""Where a worker's CPU goes, by pipeline stage, from py-spy's raw (collapsed) stacks.

`py-spy record --format raw --threads` writes one line per distinct stack: `thread (TID): NAME;frame
(file:line);...;frame COUNT`, outermost frame first, only for samples in which the thread was not
idle. A sample belongs to the first stage whose rule matches: the model's threads by what they run,
the event loop's by the agent whose frames it is in, then by the library it is in. Shares are of all
samples; with the worker's CPU per record they become ms per record (bench/pipeline.py).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# Agent modules and functions (streams/agents/) -> stage.
AGENTS = (("ingest.py", "", "ingest"), ("classify.py", "", "classify: event-loop side"),
          ("monitor.py", "fan_out", "monitor-fanout"), ("monitor.py", "", "monitor"),
          ("schedule.py", "", "scheduler"), ("notify.py", "", "notify"), ("case_webhooks.py", "", "case webhooks"))
# Library frames on the event loop with no agent frame -> stage, first match wins.
LIBRARIES = (("aiokafka/producer", "producer (aiokafka)"), ("faust/transport/producer", "producer (aiokafka)"),
             ("tables.py", "tables"), ("prometheus_client", "web (/metrics, /readyz)"),
             ("aiohttp", "web (/metrics, /readyz)"))
JSON = "of which JSON encode/decode (all stages)"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?):\d+\)$")


def stage_of(thread: str, frames: list[tuple[str, str]]) -> str:
    """The stage a stack's sample counts for; `frames` are (function, file), outermost first."""
    if thread.startswith(("ort-run", "classify")):
        files = " ".join(f for _, f in frames)
        if "tokenize.py" in files:
            return "model: tokenizer"
        if "onnxruntime" in files:
            return "model: ONNX Runtime"
        return "model: runtime Python"
    if thread != "MainThread":
        return "consumer thread (aiokafka fetch)"
    for func, file in frames:
        if "streams/agents/" in file:
            name = file.rsplit("/", 1)[-1]
            for module, function, stage in AGENTS:
                if name == module and (not function or func == function):
                    return stage
    for _, file in reversed(frames):
        for marker, stage in LIBRARIES:
            if marker in file:
                return stage
    if frames and frames[-1][0].endswith("Selector.select"):
        return "event loop: polling"
    return "Faust, asyncio, other"


def summarise(path: Path) -> dict[str, float]:
    """{stage: share of samples}, largest first, plus JSON's share across stages."""
    counts: Counter[str] = Counter()
    json_samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        head, *rest = stack.split(";")
        thread = re.sub(r"_\d+$", "", head.split(": ", 1)[-1])
        frames = [(m["func"], m["file"]) for m in map(_FRAME.match, rest) if m]
        counts[stage_of(thread, frames)] += int(n)
        if any("json/" in f for _, f in frames[-3:]):
            json_samples += int(n)
    total = sum(counts.values())
    if not total:
        return {}
    shares = {stage: count / total for stage, count in counts.most_common()}
    shares[JSON] = json_samples / total
    return shares
