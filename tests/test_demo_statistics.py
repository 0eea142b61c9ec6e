"""The demo's statistics for the exact line equal statsmodels'."""
import numpy as np
import statsmodels.api as sm

from jaxlm import demo
from jaxlm.datasets import celsius_fahrenheit


def test_closed_form_statistics_match_statsmodels():
    c, f = celsius_fahrenheit(seed=4)
    r = demo.fit_statistics(c, f)
    ref = sm.OLS(f, sm.add_constant(c)).fit()
    np.testing.assert_allclose(r.coef, ref.params, rtol=1e-12)
    np.testing.assert_allclose(r.std_errors, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(r.conf_int(0.95), ref.conf_int(0.05), rtol=1e-10)
    assert abs(r.r_squared - ref.rsquared) < 1e-12
    slope, intercept = demo.fit_closed_form(c, f)[1:3]
    assert abs(slope - r.coef[1]) < 1e-12 * abs(slope) and abs(intercept - r.coef[0]) < 1e-12 * abs(intercept)


def test_results_json_carries_standard_errors_and_intervals():
    res = demo.run_study(seed=1, repeats=1)
    doc = res.to_json_dict()["methods"]["closed_form"]
    se, ci = doc["std_errors"], doc["conf_int_95"]
    assert se["slope"] > 0 and se["intercept"] > 0
    assert ci["slope"][0] < doc["slope"] < ci["slope"][1]
    assert ci["intercept"][0] < doc["intercept"] < ci["intercept"][1]
