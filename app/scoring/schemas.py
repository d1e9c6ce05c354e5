"""Pydantic shapes of the score and compare endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Level = Literal["bad", "poor", "fair", "good", "excellent"]


class ScoreParams(BaseModel):
    """Form fields of POST /v1/score."""

    mode: Literal["auto", "fast", "deterministic", "sampled"] = Field(
        "auto",
        description="auto: the serving model's default, `deterministic` for a reasoning model "
        "and `fast` for an answer-only one. deterministic: the reasoning prompt GRPO trains, "
        "answered greedily up to \\boxed{, then the expected rating over the answer digit there; "
        "the same score twice, at the cost of one greedy answer per image (`tokens`: about the "
        "length of the model's reasoning). fast: one forward pass of the answer-only prompt, "
        "expected rating over the rating tokens (no generation; for a reasoning model this is "
        "not the prompt it was trained on). sampled: the paper's score prompt, `samples` sampled "
        "answers.",
    )
    samples: int = Field(8, ge=1, le=64, description="Sampled answers per image (sampled mode).")
    explain: bool = Field(False, description="Return the sampled answer texts (sampled mode).")
    store: bool = Field(False, description="Also add the images to the corpus (opt-in).")
    train_opt_out: bool = Field(
        False, description="With store=true: keep the images out of training rounds."
    )


class ScoreResult(BaseModel):
    """The score of one image."""

    filename: str
    sha256: str = Field(description="sha256 of the uploaded bytes.")
    score: float | None = Field(
        description="Quality 1 (very poor) to 5 (excellent) on the reference scale: the raw "
        "score through the version's calibration map, so one threshold holds across versions "
        "(the map is fitted on anchor scores in the serving mode and applied in every mode; "
        "it never changes the order of two images). Null when no sampled answer parsed."
    )
    raw_score: float | None = Field(
        description="The model version's own score before calibration (1-5)."
    )
    scale: int | None = Field(
        description="Reference version id of the scale `score` is on; null when the version has "
        "no calibration map yet (then score equals raw_score)."
    )
    std: float = Field(
        description="Spread: of the rating distribution (fast, deterministic) or the samples."
    )
    level: Level | None = Field(description="The score's band: <1.8 bad … ≥4.2 excellent.")
    valid: int = Field(
        description="Answers that parsed (1 in fast mode; in deterministic mode 1 when the greedy "
        "answer wrote its own box, 0 when the box was opened after it)."
    )
    n: int = Field(description="Answers asked for (1 in fast and deterministic mode).")
    mode: str | None = Field(None, description="The mode that scored it (`auto` resolved).")
    tokens: int | None = Field(
        None, description="Tokens the model generated for this image: the mode's cost."
    )
    model_version: int = Field(description="Registry version that produced this score.")
    stored: bool | None = Field(None, description="With store=true: whether it was newly stored.")
    explanations: list[str] | None = Field(None, description="Sampled answer texts (explain=true).")


class ScoreResponse(BaseModel):
    """One result per uploaded image, in upload order."""

    results: list[ScoreResult]
    elapsed_ms: float


class CompareParams(BaseModel):
    """Form fields of POST /v1/compare."""

    mode: Literal["auto", "logits", "deterministic", "sampled"] = Field(
        "auto",
        description="auto: the serving model's default, `deterministic` for a reasoning model "
        "and `logits` for an answer-only one. deterministic: each order answered greedily with "
        "the reasoning prompt up to \\boxed{, then P(0) against P(1) there, averaged over both "
        "orders (two greedy answers per pair). logits: exact probability from the answer "
        "tokens of the answer-only prompt, both orders. sampled: `votes` sampled answers with "
        "random order swaps (the paper's vote).",
    )
    votes: int = Field(32, ge=1, le=256, description="Votes (sampled mode).")


class CompareResponse(BaseModel):
    """Which of two images has better quality."""

    p_first_better: float = Field(description="Probability that the first image is better.")
    mode: Literal["logits", "deterministic", "sampled"]
    votes_first: int | None = Field(None, description="Votes for the first image (sampled).")
    votes_second: int | None = Field(None, description="Votes for the second image (sampled).")
    invalid_votes: int | None = Field(None, description="Answers that did not parse (sampled).")
    first_sha256: str
    second_sha256: str
    model_version: int
    elapsed_ms: float
