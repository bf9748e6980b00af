"""Pure JAX maths every algorithm shares: distributions, policies, normalisation, estimators,
and the tabular check of the TRPO bound. No files, envs or screens."""
