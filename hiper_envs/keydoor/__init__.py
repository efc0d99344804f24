"""`HiPER/KeyDoor-v0`: rooms in a row, locked doors, keys and a treasure; a small multi-turn text
task made to show RL learning on a CPU in minutes.

`VOCABULARY` lists every word and punctuation mark the env ever writes (observations, actions,
task, subgoals), and `tokenize` splits text into them, so a word-level tokenizer built from the
vocabulary covers everything.
"""

from hiper_envs.keydoor.game import VOCABULARY, tokenize

__all__ = ["VOCABULARY", "tokenize"]
