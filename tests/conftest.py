import collections
import os
import random
from pathlib import Path

import pytest

# before torch loads: spinning OpenMP threads collapse on cores shared with other jobs
# (see nas/process.py); the suite imports torch before nas, so set it here too
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from nas.spec import ArchSpec, HeadSpec, StageSpec, StemSpec

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CIFAR_ARCHIVE = SHARED_DATA / "cifar10-jpeg.tar.gz"

# under pytest-xdist the cores are shared between its worker processes
_JOBS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _JOBS)))


def random_spec(rng: random.Random, num_stages: int | None = None) -> ArchSpec:
    """A random valid spec touching every block type and option."""
    stages = []
    for _ in range(num_stages or rng.randint(1, 5)):
        block = rng.choice(["mbconv", "mbconv", "ds", "conv", "basic", "bottleneck"])
        expand = {"mbconv": rng.choice([1, 3, 4, 6]), "bottleneck": rng.choice([2, 4])}.get(block, 1)
        stages.append(StageSpec(block=block, repeats=rng.randint(1, 3), kernel=rng.choice([1, 3, 5, 7]),
                                stride=rng.choice([1, 2]), out=rng.choice([8, 12, 16, 24, 40]),
                                expand=expand, se=rng.choice([0.0, 0.25, 0.5]),
                                skip=rng.random() < 0.8))
    return ArchSpec(
        name="random", resolution=rng.choice([32, 40, 48, 64, 96]), num_classes=rng.choice([10, 100]),
        stem=StemSpec(channels=rng.choice([8, 16, 24]), kernel=rng.choice([3, 5]),
                      stride=rng.choice([1, 2]), pool=rng.random() < 0.2),
        stages=tuple(stages), head=HeadSpec(rng.choice([0, 64, 128])),
        activation=rng.choice(["silu", "relu", "relu6"]), dropout=0.1, drop_path=0.1)


def pytest_collection_modifyitems(items):
    """Every test that asks for the PostgreSQL server carries the `postgres` marker; the files
    with the most `slow` tests come first. `make test` hands out whole files in this order
    (pytest-xdist --dist loadfile --no-loadscope-reorder): a long file started last would run
    alone while the other processes idle (longest first is the classic fix for that)."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    files = {path: i for i, path in enumerate(dict.fromkeys(item.path for item in items))}
    items.sort(key=lambda item: (-slow[item.path], files[item.path]))  # stable within a file


@pytest.fixture
def tiny_spec() -> ArchSpec:
    return ArchSpec.from_dict({
        "name": "tiny", "resolution": 16, "num_classes": 10,
        "stem": {"channels": 16, "kernel": 3, "stride": 1},
        "stages": ["mbconv_r1_k3_s1_e1_c16_se0.25", "mbconv_r2_k3_s2_e4_c24_se0.25",
                   "mbconv_r2_k5_s2_e4_c40_se0.25"],
        "head": {"channels": 128}, "dropout": 0.1, "drop_path": 0.1})


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (see tests/postgres.py)."""
    from postgres import start_server

    gen = start_server()
    try:
        url = next(gen)
    except (RuntimeError, OSError, __import__("subprocess").CalledProcessError) as exc:
        if os.environ.get("NAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but could not start: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield url
    next(gen, None)


@pytest.fixture
def fake_trainer(monkeypatch):
    """The shared trainer replaced by a deterministic fake (tests/fakes.py) in this process."""
    import fakes

    fakes.install(monkeypatch)
    return fakes.fake_train


def smoke_recipe_file(tmp_path_factory, name: str, **changes) -> Path:
    """The `smoke` recipe with `changes`, written to a YAML file a test can pass as --recipe."""
    from nas.recipe import resolve_recipe

    path = tmp_path_factory.mktemp("recipe") / f"{name}.yaml"
    path.write_text(resolve_recipe("smoke").replace(name=name, **changes).to_yaml())
    return path


def journal_storage(path: Path):
    """The Optuna journal storage of a study file."""
    import optuna

    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def sigint_default() -> None:
    """For a child process a test will Ctrl-C: a shell that starts its jobs in the background
    (a CI runner may) leaves SIGINT ignored, which the child would inherit and Python then keeps."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_mid_study(proc, journal: Path, study_name: str, finished: int = 1, timeout: float = 120) -> list:
    """SIGKILL `proc` once the study in `journal` holds `finished` complete trials and one
    running; return the complete trials seen then (fewer when the run never got that far)."""
    import signal
    import time

    import optuna

    deadline, done = time.time() + timeout, []
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name=study_name, storage=journal_storage(journal)).trials
        except Exception:  # not written yet, or caught mid-write
            continue
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(done) >= finished and any(t.state == optuna.trial.TrialState.RUNNING for t in trials):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return done
