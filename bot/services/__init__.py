"""Services the cogs call, one file each: orchestration over the DB, the pipeline, the serving client and the
retrain process. Cogs hold no SQL and no protobufs; everything they need is a method here."""

from bot.services.browse import BrowseService, TrackLine
from bot.services.common import Requester
from bot.services.retrain import RetrainOutcome, RetrainService
from bot.services.status import StatusReport, StatusService
from bot.services.tracks import Pipeline, TrackInfo, TrackService, default_pipeline
from bot.services.votes import VoteService

__all__ = [
    "BrowseService",
    "Pipeline",
    "Requester",
    "RetrainOutcome",
    "RetrainService",
    "StatusReport",
    "StatusService",
    "TrackInfo",
    "TrackLine",
    "TrackService",
    "VoteService",
    "default_pipeline",
]
