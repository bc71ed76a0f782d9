"""Services the cogs call, one file each: orchestration over the DB, the composing engine, the model server and
the retrain process. Cogs hold no SQL and no protobufs; everything they need is a method here."""

from bot.services.browse import BrowseService, TrackLine
from bot.services.common import Requester, Viewer
from bot.services.retrain import RetrainOutcome, RetrainService
from bot.services.status import StatusReport, StatusService
from bot.services.tracks import Extension, TrackInfo, TrackService, extra_lengths
from bot.services.votes import VoteService

__all__ = [
    "BrowseService",
    "Extension",
    "Requester",
    "RetrainOutcome",
    "RetrainService",
    "StatusReport",
    "StatusService",
    "TrackInfo",
    "TrackLine",
    "TrackService",
    "Viewer",
    "VoteService",
    "extra_lengths",
]
