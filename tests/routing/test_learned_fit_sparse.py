"""The learned router's logistic fit runs on the hashed columns its rows use: the weights are those of
the fit over every column (a column no row uses keeps weight 0), at a fraction of the cost."""

from __future__ import annotations

import numpy as np

from shipyard.routing._learned import _L2, _RATE, _STEPS, DIMS, _fit_logistic


def _dense_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    n, d = x.shape
    mean = float(y.mean())
    w = np.zeros(d)
    b = float(np.log(mean / (1 - mean)))
    for _ in range(_STEPS):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = p - y
        w -= _RATE * (x.T @ g / n + _L2 * w)
        b -= _RATE * float(g.mean())
    return w, b


def test_the_fit_on_used_columns_equals_the_fit_on_all_columns() -> None:
    rng = np.random.default_rng(3)
    x = np.zeros((60, DIMS + 7))
    for row in x:
        row[rng.choice(200, 12, replace=False)] = rng.random(12)  # a few hundred of the DIMS in use
        row[DIMS:] = rng.random(7) * 4
    y = (x[:, 0] + x[:, DIMS] > 1.5).astype(float)
    w, b = _fit_logistic(x, y)
    dense_w, dense_b = _dense_fit(x, y)
    assert np.allclose(w, dense_w, rtol=0, atol=1e-12) and abs(b - dense_b) < 1e-12
    assert not w[200:DIMS].any()  # unused columns: weight 0
