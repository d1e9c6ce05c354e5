"""Imports every ORM model so the metadata is complete (Alembic, tests)."""

from app.calibration.models import AnchorImage, AnchorSet, VersionCalibration
from app.corpus.models import Image
from app.db import Base
from app.registry.models import Activation, ModelVersion
from app.rounds.models import Pair, ProbeSet, Round, Schedule

__all__ = [
    "Base",
    "Image",
    "ModelVersion",
    "Activation",
    "Round",
    "Pair",
    "ProbeSet",
    "Schedule",
    "AnchorSet",
    "AnchorImage",
    "VersionCalibration",
]
