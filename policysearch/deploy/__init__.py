"""Deployment edge: export a trained policy or controller (ONNX, or NumPy arrays with a loader that
needs nothing but NumPy). `loader.py` imports nothing from policysearch on purpose: it is the file
a robot's code base copies."""
