"""RL training for hiper-bench agents: advantage estimators, losses and token spans (docs/training.md)."""
