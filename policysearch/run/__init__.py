"""The edges that touch files, processes and screens: run folders, checkpoints, logs, progress,
the trainers that drive the pure algorithms, evaluation, plots and videos."""
