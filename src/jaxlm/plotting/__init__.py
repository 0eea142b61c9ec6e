"""Figures, returned as :class:`matplotlib.figure.Figure` and never shown.

:mod:`.study`        the Celsius→Fahrenheit study (data, fits, loss curve)
:mod:`.diagnostics`  regression diagnostics (actual vs predicted, residuals, Q-Q, scale-location,
                     leverage, a fit line with bands)

matplotlib is imported on first use. The study's names are re-exported here
(``jaxlm.plotting.plot_fits``), as before the package existed.
"""
from .study import new_figure, plot_data, plot_fits, plot_loss, warm_up

__all__ = ["new_figure", "plot_data", "plot_fits", "plot_loss", "warm_up"]
