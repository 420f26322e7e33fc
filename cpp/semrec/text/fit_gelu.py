"""Fit the rational erf behind gelu.hpp: erf(y / sqrt 2) ~ y P(y^2) / Q(y^2) on |y| <= 5.5.

A developer's tool (not run by the build): prints P's and Q's coefficients for gelu_erf.
Linearised least squares (y P - erf Q, Q(0) = 1) in the scaled variable (y / 5.5)^2, each round
reweighted by the previous Q (Loeb) and by the error (Lawson), which drives it towards the
minimax fit; the best round is kept. Usage: python fit_gelu.py [degree of P] [degree of Q]
"""

import math
import sys

import numpy as np

CLAMP = 5.5


def fit(p_degree: int, q_degree: int, rounds: int = 60):
    # Uniform points plus a cosine-spaced set, dense near the clamp where erf flattens.
    y = np.concatenate(
        [
            np.linspace(1e-6, CLAMP, 40001),
            CLAMP * (1 - np.cos(np.linspace(0, np.pi / 2, 20001)))[1:],
        ]
    )
    u = (y / CLAMP) ** 2
    target = np.array([math.erf(v / math.sqrt(2)) for v in y])
    columns = [
        y[:, None] * u[:, None] ** np.arange(p_degree + 1),
        -target[:, None] * u[:, None] ** np.arange(1, q_degree + 1),
    ]
    a = np.concatenate(columns, axis=1)
    weight, q_previous, best = np.ones_like(y), np.ones_like(y), None
    for _ in range(rounds):
        w = weight / q_previous
        coef = np.linalg.lstsq(a * w[:, None], target * w, rcond=None)[0]
        p, q = coef[: p_degree + 1], np.concatenate([[1.0], coef[p_degree + 1 :]])
        q_values = np.polyval(q[::-1], u)
        error = y * np.polyval(p[::-1], u) / q_values - target
        if best is None or np.abs(error).max() < best[0]:
            best = (np.abs(error).max(), p, q)
        q_previous = q_values
        weight = weight * np.sqrt(np.abs(error) / np.abs(error).mean())
        weight /= weight.mean()
    worst, p, q = best
    # Back to powers of y^2 itself.
    scale = CLAMP**-2.0
    return worst, p * scale ** np.arange(p.size), q * scale ** np.arange(q.size)


if __name__ == "__main__":
    p_degree, q_degree = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (6, 4)
    worst, p, q = fit(p_degree, q_degree)
    print(f"// max |error| of erf in float64: {worst:.3g}")
    for name, c in (("P", p), ("Q", q)):
        print(name, ", ".join(f"{np.float32(v):.9g}f" for v in c[::-1]), "(highest power first)")
