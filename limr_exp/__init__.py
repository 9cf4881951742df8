"""limr-exp: LIMR (Li, Zou, Liu 2025, "LIMR: Less is More for RL Scaling") as a Hydra experiment framework.

Pipeline: dataset -> probe RL run (reward history) -> selector -> RL training -> evaluation.
"""

__version__ = "0.1.0"
