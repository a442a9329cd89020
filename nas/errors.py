"""Errors the CLI reports as one line (no traceback) with a non-zero exit."""


class NasError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""


class StudyError(NasError):
    """A search, grid, pipeline or other resumable run cannot start or continue."""


SearchError = StudyError  # the name the search engine's callers know


class TrainError(NasError):
    """A run that cannot start or continue (bad resume, out of memory, ...)."""


class FolderRefused(StudyError, TrainError):
    """An output folder a command may not use as asked: locked by another run, holding another
    configuration, pinned with other settings, damaged, or holding other outputs under the names
    it would write (nas.runfolder). One type for every such refusal; it is a StudyError and a
    TrainError so the callers that handled those before still do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a command's own line on what was saved and how to go on (exit 130)."""
