"""Trajectory optimisation: iLQR/DDP with control limits, and the linear-Gaussian controller
(imported on first use, `policysearch.lazy`)."""

from policysearch.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "ILQRConfig": "policysearch.control.ilqr", "Solution": "policysearch.control.ilqr", "solve": "policysearch.control.ilqr",
    "LinearGaussianController": "policysearch.control.lqg",
})

__all__ = ["ILQRConfig", "LinearGaussianController", "Solution", "solve"]
