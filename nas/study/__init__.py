"""The resumable-study core shared by search, the scaling grid and every multi-run command."""
from .core import (ProgressLine, Status, StudyPlan, await_stale, buffered, count_statuses, finished_with,
                   load_for_worker, locked, open_study, quiet_interrupt, run_workers, set_attrs)
from ..errors import StudyError
from ..runfolder.lock import RunLock, check_unlocked
from ..runfolder.pinned import pin_settings
from .core import spawn_workers
from .storage import is_file_storage, make_storage, recover_stale, requeue_interrupted

__all__ = ["ProgressLine", "RunLock", "Status", "StudyError", "StudyPlan", "await_stale", "buffered", "check_unlocked",
           "count_statuses", "finished_with", "is_file_storage", "load_for_worker", "locked",
           "make_storage", "open_study", "pin_settings", "quiet_interrupt", "recover_stale", "requeue_interrupted",
           "run_workers", "set_attrs", "spawn_workers"]
