"""Trajectory optimisation: iLQR/DDP with control limits, and the linear-Gaussian controller."""

from policysearch.control.ilqr import ILQRConfig, Solution, solve
from policysearch.control.lqg import LinearGaussianController

__all__ = ["ILQRConfig", "LinearGaussianController", "Solution", "solve"]
