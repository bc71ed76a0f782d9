"""Errors of the training package."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of the errors raised by `training`."""


class NoDataError(TrainingError):
    """There is not enough music to build a training, validation or test split."""


class PresetError(TrainingError, ValueError):
    """A preset name is unknown or its values are inconsistent."""


class ExportError(TrainingError):
    """A model could not be exported (the served models are left untouched)."""


class ModelsNotFoundError(TrainingError):
    """The models directory holds no exported ensemble version."""


class ServedModelError(TrainingError):
    """The served ensemble cannot be loaded, so a new version cannot be compared with it."""
