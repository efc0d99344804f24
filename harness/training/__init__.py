"""Training hiper-bench agents (docs/training.md): `trainer` runs the loop (rollouts through the
harness, scoring, the PPO update, checkpoints); `algorithms` has one function per algorithm (HAE,
GAE, GRPO, RLOO, GiGPO, SFT) with its equations; `advantages` the vectorised estimators and
`reference` the same as plain loops; `memory` the plan behind `train --plan`."""
