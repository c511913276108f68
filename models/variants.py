"""The model variants, in one registry: the file each runs, and whether it re-checks close calls.

Every reader of a variant name reads it here: the runtime picks the file (models/runtime.py), the
export writes the files and the parity report (models/export.py), the `FINSENTRY_MODEL_VARIANT`
setting and the `--variant` options accept the names, and bench/inference.py compares them. A new
variant is one entry in VARIANTS (and, where it needs a new file, the export that writes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# Where a model runs; "auto" is CUDA when the CUDA provider and its libraries load, else the CPU.
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = get_args(Device)


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    # The ONNX file in a model directory that this variant runs.
    file: str
    # What it is, for --help and the docs.
    description: str
    # The file that uncertain predictions run again on (models/recheck.py); a re-check runs only on
    # the CPU, where it needs the margin `finsentry export` chose (card.json `recheck.margin`).
    recheck_file: str | None = None
    # The devices on which bench/inference.py compares it.
    compared_on: tuple[Device, ...] = ()


INT8_RECHECK = Variant("int8+recheck", "model.onnx", "int8 with close calls re-run on fp16 weights",
                       recheck_file="model.fp16.onnx", compared_on=("cpu",))
INT8 = Variant("int8", "model.onnx", "per-channel dynamic int8, model.onnx alone", compared_on=("cpu",))
FP16 = Variant("fp16", "model.fp16.onnx", "fp16 weights, for CUDA", compared_on=("cuda",))
FP32 = Variant("fp32", "model.fp32.onnx", "the fused fp32 graph, kept by export unless --no-fp32",
               compared_on=("cpu", "cuda"))

VARIANTS: dict[str, Variant] = {v.name: v for v in (INT8_RECHECK, INT8, FP16, FP32)}

# What runs when no variant is asked for: the first one the model directory can run.
CPU_DEFAULTS: tuple[Variant, ...] = (INT8_RECHECK, INT8)
CUDA_DEFAULTS: tuple[Variant, ...] = (FP16, INT8)


def by_name(name: str) -> Variant:
    """The variant named `name`; ValueError naming the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown model variant {name!r}; use one of {', '.join(VARIANTS)}") from None


def without_recheck(chosen: Variant) -> Variant:
    """The variant that runs the same file with no re-check (int8 for int8+recheck)."""
    return next((v for v in VARIANTS.values() if v.file == chosen.file and v.recheck_file is None), chosen)


def variants_help() -> str:
    """The `--variant` help: the defaults, then every variant with what it is."""
    listed = "; ".join(f"{v.name} ({v.description})" for v in VARIANTS.values())
    return f"default: {CPU_DEFAULTS[0].name} on a CPU, {CUDA_DEFAULTS[0].name} on CUDA; or one of {listed}"
