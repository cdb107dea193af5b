"""Errors caused by bad input (config, data, files), as opposed to bugs.

The CLI prints these as one clear line (they all name the thing and the fix) and exits 2;
anything else is a bug and keeps its traceback.
"""
from itr.checkpoint import CheckpointError
from itr.config import ConfigError
from itr.data.images import ImageError
from itr.data.dataset import DatasetError
from itr.features.store import FeatureStoreError
from itr.index import IndexFileError
from itr.jobs import StateLockedError
from itr.papers import UnknownPaperError

USER_ERRORS = (ConfigError, DatasetError, ImageError, FeatureStoreError, CheckpointError, IndexFileError,
               UnknownPaperError, StateLockedError, FileNotFoundError)
