"""The texts of the reasoning fixture's format prior: think blocks as a chain of ordinal steps
("First, ...", ..., "Finally, ...") whose clauses carry the image's brightness, then a box."""

from __future__ import annotations

import numpy as np

# Clauses of the think block; brightness ones are picked to match the image.
GENERIC = (
    "the details are clear",
    "there is some noise in the flat areas",
    "the edges look soft",
    "the colors look natural",
    "the contrast is low",
    "the texture is fine",
    "I look at the whole picture",
    "the focus is good",
    "some areas are blurry",
    "the exposure matters here",
    "the picture has few artifacts",
    "the sharpness is acceptable",
)
DARK = ("the image is dark", "the shadows hide details", "it is underexposed")
MID = ("the lighting is balanced", "the brightness is moderate")
BRIGHT = ("the image is bright", "the highlights are clear", "it is well lit")
COMPARE = {
    0: ("the first image is brighter", "the second image is darker"),
    1: ("the second image is brighter", "the first image is darker"),
}
# The think text is a chain of steps with these openers, then "Finally, ...": after each step
# the training texts go on more often than they finish, and the chain has a hard end, so a
# greedy answer walks it to the end and closes with a box while samples stop anywhere.
ORDINALS = (
    "First",
    "Second",
    "Third",
    "Fourth",
    "Fifth",
    "Sixth",
    "Seventh",
    "Eighth",
    "Ninth",
    "Tenth",
)
FINALLY = "Finally"


def brightness_clause(rng: np.random.Generator, brightness: float) -> str:
    pool = DARK if brightness < 0.35 else BRIGHT if brightness > 0.65 else MID
    return pool[rng.integers(len(pool))]


def think_chain(rng: np.random.Generator, steps: int, cue) -> str:
    """`steps` ordinal steps of two clauses each, then "Finally, <cue>."; cue() gives the
    clauses that carry the image's evidence: the first step's (read right after the image),
    the last one's (read right before the box) and about one in three of the rest."""

    def clause() -> str:
        return cue() if rng.random() < 0.35 else GENERIC[rng.integers(len(GENERIC))]

    parts = [f"{ORDINALS[0]}, {cue()}, and {clause()}."]
    parts += [f"{ORDINALS[k]}, {clause()}, and {clause()}." for k in range(1, steps)]
    parts.append(f"{FINALLY}, {cue()}.")
    return " ".join(parts)


def score_completion(rng: np.random.Generator, brightness: float, steps: int) -> str:
    """`<think> ... </think> \\boxed{x.xx}` with the score following brightness (noisy)."""
    score = float(np.clip(1.0 + 4.0 * brightness + rng.normal(0.0, 0.3), 1.0, 5.0))
    think = think_chain(rng, steps, lambda: brightness_clause(rng, brightness))
    return f"<think> {think} </think> \\boxed{{{score:.2f}}}"


def compare_completion(rng: np.random.Generator, first: float, second: float, steps: int) -> str:
    """`<think> ... </think> \\boxed{0|1}`: 0 when the first image is the brighter one."""
    choice = 0 if first > second else 1
    pool = COMPARE[choice]
    think = think_chain(rng, steps, lambda: pool[rng.integers(len(pool))])
    return f"<think> {think} </think> \\boxed{{{choice}}}"
