"""Reader and model functions for the NIST StRD nonlinear regression datasets.

The ``.dat`` files in ``tests/data/nist-strd/`` (see ``SOURCE.md`` there) hold the
model, two start points, certified parameters with certified standard deviations,
the certified residual sum of squares and the data (``y`` first, then the predictors).
The model formulas are transcribed by hand from each file's ``Model:`` block;
``test_nist_model_reproduces_certified_rss`` guards the transcription.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent / "data" / "nist-strd"

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PARAM_RE = re.compile(rf"^\s*b(\d+)\s*=\s*({_NUM})\s+({_NUM})\s+({_NUM})\s+({_NUM})\s*$")


@dataclass(frozen=True)
class NistProblem:
    name: str
    difficulty: str  # "Lower", "Average" or "Higher"
    start1: np.ndarray  # harder start, farther from the solution
    start2: np.ndarray
    certified: np.ndarray
    certified_se: np.ndarray
    certified_rss: float
    y: np.ndarray
    x: np.ndarray  # (n,) or (n, 2) for Nelson


def read_nist(name: str) -> NistProblem:
    """Parse ``tests/data/nist-strd/<name>.dat``; errors name the file and what is missing."""
    path = DATA_DIR / f"{name}.dat"
    lines = path.read_text().splitlines()
    difficulty = rows = rss = None
    params: dict[int, tuple[float, ...]] = {}
    data: list[list[float]] = []
    in_data = False
    for line in lines:
        if in_data:
            if line.strip():
                data.append([float(v) for v in line.split()])
            continue
        m = re.search(r"(Lower|Average|Higher) Level of Difficulty", line)
        if m:
            difficulty = m.group(1)
        m = _PARAM_RE.match(line)
        if m:
            params[int(m.group(1))] = tuple(float(m.group(k)) for k in range(2, 6))
        if line.startswith("Residual Sum of Squares:"):
            rss = float(line.split(":")[1])
        m = re.match(r"\s*(\d+)\s+Observations", line)
        if m:
            rows = int(m.group(1))
        if re.match(r"^Data:\s+y\b", line):
            in_data = True
    for what, value in (("difficulty", difficulty), ("observations", rows), ("RSS", rss), ("parameters", params)):
        if not value:
            raise ValueError(f"{path}: no {what} found")
    if sorted(params) != list(range(1, len(params) + 1)):
        raise ValueError(f"{path}: parameters b1..bp not contiguous: {sorted(params)}")
    table = np.array([params[k] for k in sorted(params)])
    arr = np.array(data)
    if arr.shape[0] != rows:
        raise ValueError(f"{path}: {arr.shape[0]} data rows, header says {rows}")
    x = arr[:, 1] if arr.shape[1] == 2 else arr[:, 1:]
    return NistProblem(name, difficulty, table[:, 0], table[:, 1], table[:, 2], table[:, 3], rss, arr[:, 0], x)


def _rational(num_deg):
    def f(x, b):
        num = sum(b[i] * x**i for i in range(num_deg + 1))
        den = 1.0 + sum(b[num_deg + i] * x**i for i in range(1, len(b) - num_deg))
        return num / den

    return f


def _exp3(x, b):
    return b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-b[3] * x) + b[4] * np.exp(-b[5] * x)


def _gauss(x, b):
    return (b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-((x - b[3]) ** 2) / b[4] ** 2)
            + b[5] * np.exp(-((x - b[6]) ** 2) / b[7] ** 2))


def _enso(x, b):
    w = 2 * np.pi * x
    return (b[0] + b[1] * np.cos(w / 12) + b[2] * np.sin(w / 12) + b[4] * np.cos(w / b[3])
            + b[5] * np.sin(w / b[3]) + b[7] * np.cos(w / b[6]) + b[8] * np.sin(w / b[6]))


def _misra1a(x, b):
    return b[0] * (1 - np.exp(-b[1] * x))


def _chwirut(x, b):
    return np.exp(-b[0] * x) / (b[1] + b[2] * x)


#: model function f(x, b) per dataset. Nelson is fitted as exp(.) in log error mode,
#: which is exactly NIST's ``log[y] = b1 - b2*x1*exp[-b3*x2]`` (``x`` is a dict there).
MODELS = {
    "Misra1a": _misra1a,
    "BoxBOD": _misra1a,
    "Chwirut1": _chwirut,
    "Chwirut2": _chwirut,
    "Lanczos1": _exp3,
    "Lanczos2": _exp3,
    "Lanczos3": _exp3,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "Gauss3": _gauss,
    "DanWood": lambda x, b: b[0] * x ** b[1],
    "Misra1b": lambda x, b: b[0] * (1 - (1 + b[1] * x / 2) ** (-2)),
    "Kirby2": _rational(2),
    "Hahn1": _rational(3),
    "Thurber": _rational(3),
    "Nelson": lambda x, b: np.exp(b[0] - b[1] * x["x1"] * np.exp(-b[2] * x["x2"])),
    "MGH17": lambda x, b: b[0] + b[1] * np.exp(-x * b[3]) + b[2] * np.exp(-x * b[4]),
    "Misra1c": lambda x, b: b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5)),
    "Misra1d": lambda x, b: b[0] * b[1] * x * ((1 + b[1] * x) ** (-1)),
    "Roszman1": lambda x, b: b[0] - b[1] * x - np.arctan(b[2] / (x - b[3])) / np.pi,
    "ENSO": _enso,
    "MGH09": lambda x, b: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
    "Rat42": lambda x, b: b[0] / (1 + np.exp(b[1] - b[2] * x)),
    "MGH10": lambda x, b: b[0] * np.exp(b[1] / (x + b[2])),
    "Eckerle4": lambda x, b: (b[0] / b[1]) * np.exp(-0.5 * ((x - b[2]) / b[1]) ** 2),
    "Rat43": lambda x, b: b[0] / ((1 + np.exp(b[1] - b[2] * x)) ** (1 / b[3])),
    "Bennett5": lambda x, b: b[0] * (b[1] + x) ** (-1 / b[2]),
}

NAMES = sorted(MODELS)


def model_x(problem: NistProblem):
    """Predictors in the form the model function takes (dict for Nelson)."""
    if problem.name == "Nelson":
        return {"x1": problem.x[:, 0], "x2": problem.x[:, 1]}
    return problem.x


def error_mode(problem: NistProblem) -> str:
    return "log" if problem.name == "Nelson" else "absolute"
