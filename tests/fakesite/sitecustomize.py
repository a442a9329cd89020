"""Loaded at start-up by every Python process whose PYTHONPATH starts with this folder
(tests/fakes.py `fake_env()`): with NAS_TEST_FAKE_TRAINER set, the shared trainer is the
deterministic fake in that process and in the worker processes it spawns."""
import os

if os.environ.get("NAS_TEST_FAKE_TRAINER") is not None:
    import fakes

    fakes.install_at_startup(float(os.environ["NAS_TEST_FAKE_TRAINER"] or 0))
