"""HiPER's envs and HAE inside verl (docs/verl.md): an agent loop that plays any `HiPER/*` env through
our agents, and the advantage step that gives each span of a plan-execute reply its HAE advantage.

Needs the `verl` extra, installed in its own environment (`make verl-env`: verl pins transformers<5.11).
"""

LOOP_NAME = "hiper_env"  # the agent loop's name in verl's registry, datasets and agent loop files
