"""`nas pipeline` takes the search's and grid's study options (--storage, --pruner, --timeout,
--val-fraction) and hands them to both; pipelines sharing one storage name their studies
after their own folders, so they never collide. The real runs here train nothing: in hard
mode at the space's smallest MACs the first candidate is rejected untrained and the timeout
stops the search step (tests/test_data_checks.py, cheap_pipeline)."""
import optuna
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from nas.cli import build_parser, main
from nas.commands.options import config_from
from scaling.pipeline import Pipeline, PipelineConfig
from test_data_checks import cheap_pipeline
from test_safety import one_error_line, tree_hash


def _config(argv: list[str]) -> PipelineConfig:
    from scaling import parse_phis

    args = build_parser().parse_args(argv)
    return config_from(PipelineConfig, args, phis=tuple(parse_phis(args.phi)), grid_closest=args.grid_closest,
                       study_targets=())


def test_the_options_reach_the_search_and_grid_configs(tmp_path):
    out = tmp_path / "runs" / "pipe-a"
    shared = str(tmp_path / "shared.journal")
    config = _config(["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1.5M",
                      "--out", str(out), "--storage", shared, "--pruner", "halving", "--timeout", "30",
                      "--val-fraction", "0.2", "--heartbeat", "5"])
    search, grid = Pipeline(config)._search_config(), Pipeline(config)._grid_config()
    assert (search.storage, search.pruner, search.timeout, search.val_fraction) == (shared, "halving", 30, 0.2)
    assert (grid.storage, grid.timeout, grid.val_fraction) == (shared, 30, 0.2)
    assert search.plan().heartbeat == 5 and grid.heartbeat == 5
    assert (search.name, grid.name) == ("pipe-a-search", "pipe-a-grid")
    data = Pipeline(config).dataset  # the final comparison's data holds out the same share
    assert abs(len(data.val) / (len(data.train) + len(data.val)) - 0.2) < 0.01
    assert {"timeout", "heartbeat"} <= set(PipelineConfig.RESUMABLE)
    assert not {"storage", "pruner", "val_fraction"} & set(PipelineConfig.RESUMABLE)
    # without --storage each study has its own journal in its step folder: the names stay as before
    own = _config(["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1.5M",
                   "--out", str(out)])
    assert (Pipeline(own)._search_config().name, Pipeline(own)._grid_config().name) == ("search", "grid-grid")


def test_two_pipelines_sharing_a_journal_keep_their_own_studies(tmp_path, capsys):
    shared = tmp_path / "shared.journal"
    one, two = tmp_path / "a" / "pipe-one", tmp_path / "b" / "pipe-two"
    for out in (one, two):  # the same settings, different folders
        assert main(cheap_pipeline("tiny", out, "--storage", str(shared))) == 0
        assert "search: stopped at --timeout with 0/1 candidates trained" in capsys.readouterr().out
    storage = JournalStorage(JournalFileBackend(str(shared)))
    assert sorted(optuna.get_all_study_names(storage)) == ["pipe-one-search", "pipe-two-search"]
    for name in ("pipe-one-search", "pipe-two-search"):  # its own study, one trial run
        study = optuna.load_study(study_name=name, storage=storage)
        assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert not (one / "search" / "study.journal").exists()  # the shared storage, not the default
    assert yaml.safe_load((one / "search" / "search.yaml").read_text())["study_name"] == "pipe-one-search"


def test_timeout_is_resumable_and_the_study_options_are_pinned(tmp_path, capsys):
    out = tmp_path / "pipe"
    assert main(cheap_pipeline("tiny", out)) == 0
    assert not (out / "pipeline.json").exists()  # stopped at the timeout: no step is done
    argv = cheap_pipeline("tiny", out)
    argv[argv.index("--timeout") + 1] = "0.002"
    assert main(argv) == 0  # a new timeout resumes the same run
    capsys.readouterr()
    before = tree_hash(out)
    assert main(cheap_pipeline("tiny", out, "--pruner", "halving")) == 2
    assert "other settings (pruner differ)" in one_error_line(capsys.readouterr().err)
    assert tree_hash(out) == before


def test_a_pipeline_made_before_the_options_existed_resumes(tmp_path, capsys):
    out = tmp_path / "pipe"
    assert main(cheap_pipeline("tiny", out)) == 0
    saved = yaml.safe_load((out / "pipeline.yaml").read_text())
    for key in ("storage", "pruner", "timeout", "val_fraction"):  # as an older version wrote it
        saved.pop(key)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(cheap_pipeline("tiny", out)) == 0
    (out / "pipeline.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    capsys.readouterr()
    assert main(cheap_pipeline("tiny", out, "--val-fraction", "0.2")) == 2  # not the default: refused
    assert "other settings (val_fraction differ)" in one_error_line(capsys.readouterr().err)
