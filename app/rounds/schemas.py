"""Round configuration (validated by the API, read by the workers) and the API's round shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.errors import EvoqError
from app.params import MAX_ROW_ID
from app.quality import distortions
from app.quality.augment import AugmentConfig
from app.quality.grpo import GRPORoundConfig
from app.quality.refresh import RefreshConfig
from app.quality.voting import VoteConfig
from app.timeutil import UtcDatetime

DistortionType = Literal[tuple(distortions.DISTORTIONS)]  # type: ignore[valid-type]


class AugmentIn(BaseModel):
    """Synthetic variants of the corpus images for this round only (the paper's round 2)."""

    model_config = ConfigDict(extra="forbid")

    variants: int = Field(10, ge=1, le=32, description="Distorted versions per image (paper: 10).")
    types: list[DistortionType] = Field(
        default_factory=lambda: list(distortions.DISTORTIONS),
        min_length=1,
        description="Distortion types, each at a random level 1-5 (paper: 10 types).",
    )
    same_reference_fraction: float = Field(
        0.5, ge=0, le=1, description="Share of pairs that are two versions of one image."
    )
    random_pairs_from: Literal["augmented", "references"] = Field(
        "augmented",
        description="The other pairs: over images and variants, or over the stored images "
        "only (variants then appear only beside their own image).",
    )

    def augment_config(self) -> AugmentConfig:
        """The library's augmentation config."""
        return AugmentConfig(
            variants=self.variants,
            types=tuple(dict.fromkeys(self.types)),
            same_reference_fraction=self.same_reference_fraction,
            random_pairs_from=self.random_pairs_from,
        )


class RoundConfigIn(BaseModel):
    """An evolution round. Defaults are the paper's (K=32 votes, G=32 samples, lr 3e-7, β 0.05,
    temperature 1.0); shrink them explicitly for small machines."""

    model_config = ConfigDict(extra="forbid")

    pairs: int = Field(20_000, ge=2, le=1_000_000, description="Random image pairs to vote on.")
    votes: int = Field(32, ge=1, le=256, description="Compare queries per pair (K).")
    vote_mode: Literal["sampled", "logits"] = Field(
        "sampled",
        description="sampled: K votes with random order swaps (paper); logits: the exact "
        "answer-token probability of both orders (the K→∞ limit, one prefill per order).",
    )
    label: Literal["hard", "soft"] = Field(
        "hard", description="p*: hard majority (paper: 1, 0.5 on ties, 0) or soft vote share."
    )
    min_confidence: float | None = Field(
        None, ge=0.5, le=1.0, description="Drop pairs whose majority share is below this."
    )
    samples: int = Field(32, ge=2, le=256, description="Scoring samples per image in GRPO (G).")
    max_steps: int | None = Field(
        None, ge=1, le=1_000_000, description="GRPO steps; empty: one pass over the training pairs."
    )
    pairs_per_step: int = Field(
        4,
        ge=1,
        le=512,
        description="Pairs per GRPO step, split over the training processes "
        "(EVOQ_TRAIN_PROCESSES): it must be a multiple of their number.",
    )
    gradient_accumulation_steps: int = Field(
        1,
        ge=1,
        le=1024,
        description="Micro-batches per GRPO step: each process runs forward and backward on "
        "2 x pairs_per_step x samples / (processes x this) completions at a time. Raise it when "
        "a step does not fit in GPU memory; 2 x pairs_per_step / processes must divide by it.",
    )
    learning_rate: float = Field(3e-7, gt=0, le=1e-2, description="AdamW learning rate.")
    beta: float = Field(0.05, ge=0, le=10, description="KL penalty to the round's start model.")
    temperature: float = Field(1.0, gt=0, le=5, description="Sampling temperature (votes, GRPO).")
    holdout_fraction: float = Field(
        0.1, ge=0.01, le=0.5, description="Share of pairs kept out of training to gate it."
    )
    chunk_size: int = Field(64, ge=1, le=4096, description="Pairs per voting task.")
    max_completion_length: int | None = Field(
        None, ge=1, le=4096, description="Longest sampled answer; empty: by prompt style."
    )
    format_reward_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of a 0/1 answer-format reward (0: the paper's reward only).",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds pair sampling, votes and training.")
    refresh_steps: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Before voting, supervised steps that refresh the parent's comparison "
        "answer on the labels of the round that produced it (answer-only models; 0: off, the "
        "paper). The refreshed parent votes and is trained; the gate still compares with the "
        "parent.",
    )
    refresh_lr: float = Field(3e-4, gt=0, le=1e-2, description="The refresh's learning rate.")
    augment: AugmentIn | None = Field(
        None,
        description="Add distorted variants of the images and same-reference pairs to this "
        "round's pool (the paper's round 2); empty: the stored images only.",
    )
    policy: Literal["auto", "manual"] = Field(
        "auto", description="auto: promote when the gate passes; manual: wait for an admin."
    )
    accuracy_margin: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Gate: candidate holdout pairwise accuracy may trail the parent's by this.",
    )
    srcc_margin: float = Field(
        0.02, ge=0, le=2, description="Gate: probe-set SRCC may fall below the parent's by this."
    )
    min_parse_rate: float = Field(
        0.5, ge=0, le=1, description="Gate: share of sampled scores that must parse."
    )
    min_score_std: float = Field(
        0.05, ge=0, description="Gate: spread of scores across images (collapse guard)."
    )
    max_calibration_residual: float = Field(
        1.0,
        ge=0,
        le=4,
        description="Gate: largest mean absolute error on the anchors after the candidate's map "
        "onto the reference scale; a candidate whose map cannot fit at all is always rejected.",
    )
    min_holdout_pairs: int = Field(
        50,
        ge=0,
        le=1_000_000,
        description="Gate: fewest labelled holdout pairs a candidate may be judged on; with fewer "
        "its holdout accuracy says nothing and it is rejected (raise holdout_fraction or pairs).",
    )
    min_score_change: float = Field(
        1e-3,
        ge=0,
        le=4,
        description="Gate: a candidate whose mean |score - parent's score| on the holdout "
        "images (serving mode) is below this and whose answer KL is below min_answer_kl did not "
        "measurably change, and is rejected.",
    )
    min_answer_kl: float = Field(
        1e-6,
        ge=0,
        description="Gate: mean KL(candidate || parent) of the rating-digit distribution at the "
        "answer position on the holdout images; see min_score_change.",
    )
    eval_images: int = Field(
        64, ge=2, le=10_000, description="Images scored to measure parse rate and spread."
    )
    eval_samples: int = Field(4, ge=1, le=64, description="Sampled scores per eval image.")

    @model_validator(mode="after")
    def _whole_micro_batches(self) -> RoundConfigIn:
        if (2 * self.pairs_per_step) % self.gradient_accumulation_steps:
            raise ValueError(
                f"2 x pairs_per_step ({2 * self.pairs_per_step}) must be divisible by "
                f"gradient_accumulation_steps ({self.gradient_accumulation_steps})"
            )
        return self

    def check_training_processes(self, processes: int) -> None:
        """422 unless each of `processes` training processes gets whole pairs per step and
        whole micro-batches (the API checks at creation what training would refuse later)."""
        problems = []
        if self.pairs_per_step % processes:
            problems.append(
                {
                    "field": "config.pairs_per_step",
                    "problem": f"pairs_per_step ({self.pairs_per_step}) must be a multiple of "
                    f"the training processes (EVOQ_TRAIN_PROCESSES={processes})",
                }
            )
        elif (2 * self.pairs_per_step // processes) % self.gradient_accumulation_steps:
            problems.append(
                {
                    "field": "config.gradient_accumulation_steps",
                    "problem": f"2 x pairs_per_step / processes "
                    f"({2 * self.pairs_per_step // processes}, with EVOQ_TRAIN_PROCESSES="
                    f"{processes}) must be divisible by gradient_accumulation_steps "
                    f"({self.gradient_accumulation_steps})",
                }
            )
        if problems:
            detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            raise EvoqError("invalid_request", detail, 422, extra={"problems": problems})

    def augment_config(self) -> AugmentConfig:
        """Variants for this round; disabled when `augment` is empty."""
        return self.augment.augment_config() if self.augment else AugmentConfig()

    def refresh_config(self) -> RefreshConfig:
        """The library's comparison-refresh config."""
        return RefreshConfig(steps=self.refresh_steps, learning_rate=self.refresh_lr)

    def vote_config(self) -> VoteConfig:
        """The library's offline-stage config."""
        return VoteConfig(
            k=self.votes,
            mode=self.vote_mode,
            label=self.label,
            min_confidence=self.min_confidence,
            chunk_size=self.chunk_size,
            temperature=self.temperature,
        )

    def grpo_config(self) -> GRPORoundConfig:
        """The library's online-stage config."""
        return GRPORoundConfig(
            num_generations=self.samples,
            learning_rate=self.learning_rate,
            beta=self.beta,
            temperature=self.temperature,
            pairs_per_step=self.pairs_per_step,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_steps=self.max_steps,
            max_completion_length=self.max_completion_length,
            format_reward_weight=self.format_reward_weight,
            seed=self.seed,
        )


class StartRoundIn(BaseModel):
    """Body of POST /v1/admin/rounds."""

    config: RoundConfigIn = Field(default_factory=RoundConfigIn)


class StageEstimate(BaseModel):
    """One stage of a round's estimate."""

    stage: str = Field(description="vote, train or evaluate.")
    seconds: float


class RoundEstimate(BaseModel):
    """`evoq plan`'s FLOP-count estimate of a round on this server's device (not a measurement)."""

    seconds: float = Field(description="Estimated wall time of the whole round.")
    stages: list[StageEstimate]
    device: str = Field(description="The device assumed, with its peak FLOP/s.")
    warning: str | None = Field(
        description="Set when the estimate exceeds the threshold (1 hour): confirm first."
    )
    model_params: float = Field(description="Parameters of the serving version.")


def summarize_calibration(progress: dict[str, Any]) -> dict[str, Any]:
    """`progress` with the calibration stage's score map (hundreds of breakpoints) reduced to its
    method and size; GET /v1/admin/rounds/{id}/calibration has the whole map."""
    record = progress.get("calibration")
    if not isinstance(record, dict) or not isinstance(record.get("map"), dict):
        return progress
    full = record["map"]
    summary = {"method": full.get("method"), "points": len(full.get("xs") or [])}
    return {**progress, "calibration": {**record, "map": summary}}


class RoundOut(BaseModel):
    """A round: status, progress, config, gate decision and error."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str = Field(
        description="pending, voting, training, evaluating, awaiting_approval (manual policy), "
        "promoted, rejected, failed or cancelled."
    )
    config: dict[str, Any]
    parent_version_id: int | None
    candidate_version_id: int | None
    progress: dict[str, Any]
    gate: dict[str, Any]
    error: str | None
    trigger: str
    actor: str
    cancel_requested: bool
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    heartbeat_at: UtcDatetime | None
    estimate: RoundEstimate | None = Field(
        None, description="Only in the answer that starts a round: its estimated time here."
    )

    @field_validator("progress")
    @classmethod
    def _calibration_summary(cls, progress: dict[str, Any]) -> dict[str, Any]:
        return summarize_calibration(progress)


class RoundList(BaseModel):
    """Rounds, newest first."""

    items: list[RoundOut]


class ScheduleIn(BaseModel):
    """Continuous mode: start a round when this many new images arrived and none is running."""

    enabled: bool
    min_new_images: int = Field(500, ge=1, le=MAX_ROW_ID)
    config: RoundConfigIn = Field(default_factory=RoundConfigIn)


class ScheduleOut(BaseModel):
    """The continuous-mode schedule."""

    model_config = ConfigDict(from_attributes=True)

    enabled: bool
    min_new_images: int
    config: dict[str, Any]
    updated_by: str
    updated_at: UtcDatetime


class ProbeSetOut(BaseModel):
    """A registered labelled probe set (used only to gate and report, never to train)."""

    id: int
    name: str
    images: int
    skipped: list[dict[str, str]] = Field(default_factory=list)
