"""The paper's compare and score prompts, as conversational message lists."""

from __future__ import annotations

COMPARE_PROMPT = (
    "You are performing an image quality assessment task. Compare the two images and decide "
    "which one has better perceptual quality. Answer strictly with the index of the better "
    "image: 0 if the first image is better, or 1 if the second image is better."
)
SCORE_PROMPT = (
    "You are doing the image quality assessment task. Here is the question: What is your "
    "overall rating on the quality of this picture? The rating should be a float between 1 "
    "and 5, rounded to two decimal places, with 1 representing very poor quality and 5 "
    "representing excellent quality."
)
# The reasoning checkpoint's model card suffix, word for word: the prompt it was trained on.
REASONING_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the "
    "final answer. The final answer MUST BE put in \\boxed{}."
)
# [ours] Without reasoning the answer must come first, so the first generated token is the
# answer; fast scoring and logits comparison read exactly that position.
ANSWER_ONLY_INSTRUCTION = "Answer with the number only."


def _text(prompt: str, reasoning: bool) -> str:
    return f"{prompt} {REASONING_INSTRUCTION if reasoning else ANSWER_ONLY_INSTRUCTION}"


def score_messages(reasoning: bool) -> list[dict]:
    """One user turn: an image block, then the score prompt."""
    content = [{"type": "image"}, {"type": "text", "text": _text(SCORE_PROMPT, reasoning)}]
    return [{"role": "user", "content": content}]


def compare_messages(reasoning: bool) -> list[dict]:
    """One user turn: two image blocks (first, second), then the compare prompt."""
    content = [
        {"type": "image"},
        {"type": "image"},
        {"type": "text", "text": _text(COMPARE_PROMPT, reasoning)},
    ]
    return [{"role": "user", "content": content}]
