"""RL training for hiper-bench agents: advantage estimators, losses and token spans (SPEC 7)."""
