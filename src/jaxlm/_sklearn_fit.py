"""scikit-learn's ``LinearRegression`` on one predictor, timed; also runnable as a script.

``import sklearn`` costs about two seconds (it pulls in scipy.stats and pandas), more than
everything else ``jaxlm demo`` does. Run as a script, this file reads ``2·n`` float64 values
(celsius then fahrenheit, native byte order) from stdin and writes a JSON object to stdout,
so the demo can import scikit-learn in a second process while JAX compiles in the first.

It imports nothing from jaxlm (running it as a script must not import the package).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time


def fit(x, y, *, repeats: int = 5, budget_s: float = 0.25) -> dict:
    """Fit ``y ≈ slope·x + intercept`` with ``sklearn.linear_model.LinearRegression``.

    ``seconds`` is the median wall time of up to ``repeats`` fits (fewer when they exceed
    ``budget_s`` together). Returns ``{"slope", "intercept", "seconds", "version"}``.
    """
    import numpy as np
    import sklearn
    from sklearn.linear_model import LinearRegression

    X = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64)
    times = []
    spent = 0.0
    while not times or (len(times) < repeats and spent < budget_s):
        t0 = time.perf_counter()
        model = LinearRegression().fit(X, y)
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return {
        "slope": float(model.coef_[0]),
        "intercept": float(model.intercept_),
        "seconds": statistics.median(times),
        "version": sklearn.__version__,
    }


def _main() -> int:
    import numpy as np

    # Read the data before the slow import so that the parent never blocks on a full pipe.
    data = np.frombuffer(sys.stdin.buffer.read(), dtype=np.float64).reshape(2, -1)
    sys.stdout.write(json.dumps(fit(data[0], data[1])) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    # The parent only waits for the line above: skip the ~0.3 s teardown of scipy and friends.
    os._exit(_main())
