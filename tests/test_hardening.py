"""Issue 17: no code from data files, no writes through links, one line for every bad input.
Refusals exit 2 with one line and change nothing outside --out (nor a folder that existed)."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.spec import HeadSpec
from test_safety import SEARCH, one_error_line, tree_hash

SMOKE = ["--recipe", "smoke", "--device", "cpu"]
EMIT = ["scale", "emit", "--coefficients", "1.2,1.1,1.15"]


@pytest.fixture
def spec_file(tmp_path, tiny_spec):
    return str(tiny_spec.save(tmp_path / "tiny.yaml"))


# 1. a crafted CIFAR-10 batch runs nothing; a real-format one still loads -----------------------

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _batches(folder: Path, first) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": "x", "labels": [int(v) for v in rng.integers(0, 10, 20)],
                 "data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 "filenames": [b"img.png"] * 20}
        (folder / name).write_bytes(pickle.dumps(first if name == "data_batch_1" and first else batch,
                                                 protocol=2))
    return folder


def test_cifar_batches_are_read_without_running_code(tmp_path, spec_file, capsys, monkeypatch):
    from nas.data.cifar import _read_pickles

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "owned"
    crafted = _batches(tmp_path / "evil" / "cifar-10-batches-py", {"data": _Payload(marker)})
    assert main(["train", spec_file, "--dataset", "cifar10", "--data-dir", str(crafted.parent),
                 *SMOKE, "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot read CIFAR-10 batch {crafted / 'data_batch_1'}" in line and "posix.system" in line
    assert not marker.exists() and not (tmp_path / "run").exists()
    arrays = _read_pickles(_batches(tmp_path / "real" / "cifar-10-batches-py", None))
    assert arrays["train_x"].shape == (100, 3, 32, 32) and arrays["test_y"].shape == (20,)


# 2. every writer replaces a link planted under its output's name -------------------------------

def _plant(out: Path, names, outside: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    for name in names:
        target = outside / name
        target.write_text("precious\n")
        (out / name).symlink_to(target)
    return tree_hash(outside)


@pytest.mark.parametrize("command,names", [
    ([*SEARCH, "--target-macs", "2M", "--trials", "1"],
     ["trials.csv", "pareto.csv", "summary.md", "best.yaml", "pareto.png", "history.png", "cost.json"]),
    (["compare", "SPEC", "--dataset", "digits", *SMOKE], ["runs.csv", "compare.csv", "compare.md", "compare.png"]),
])
def test_outputs_replace_planted_links_and_leave_their_targets(tmp_path, spec_file, command, names, capsys,
                                                            fake_trainer):
    command = [spec_file if word == "SPEC" else word for word in command]
    out = tmp_path / "out"
    before = _plant(out, names, tmp_path / "outside")
    assert main([*command, "--out", str(out)]) == 0, capsys.readouterr().err
    assert tree_hash(tmp_path / "outside") == before
    assert all((out / name).is_file() and not (out / name).is_symlink() for name in names)


def test_emission_and_journal_refuse_planted_links(tmp_path, spec_file, capsys):
    out, outside = tmp_path / "out", tmp_path / "outside"
    before = _plant(out, ["scaled.csv", "tiny-phi1.yaml"], outside)
    assert main([*EMIT, "--base", spec_file, "--phi", "1", "--out", str(out)]) == 2
    assert "scaled.csv is a symbolic link" in one_error_line(capsys.readouterr().err)
    search = tmp_path / "search"
    before = {**before, **_plant(search, ["study.journal", ".nas.lock"], outside)}
    assert main([*SEARCH, "--target-macs", "2M", "--trials", "1", "--out", str(search)]) == 2
    assert "is a symbolic link; remove it" in one_error_line(capsys.readouterr().err)
    assert tree_hash(outside) == before


# 3. two nets whose names make one folder are refused ----------------------------------------------

def test_compare_refuses_names_that_sanitise_to_one_folder(tmp_path, tiny_spec, capsys):
    first = str(tiny_spec.replace(name="../../escape").save(tmp_path / "a.yaml"))
    second = str(tiny_spec.replace(name="escape", head=HeadSpec(64)).save(tmp_path / "b.yaml"))  # another net
    out = tmp_path / "cmp"
    out.mkdir()
    before = tree_hash(tmp_path)
    assert main(["compare", first, second, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'../../escape' and 'escape' would share the folder 'escape'" in line
    assert tree_hash(tmp_path) == before and list(out.iterdir()) == []


# 4. a target beyond the space's largest net is refused like one below its smallest --------------

def test_target_above_the_space_is_refused_and_leaves_no_folder(tmp_path, capsys, tiny_spec):
    out = tmp_path / "runs" / "s"
    assert main([*SEARCH, "--target-macs", "1e12", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is above the largest candidate of space tiny: 13,322,336 MACs" in line
    assert "lower --target-macs" in line and list(tmp_path.iterdir()) == []
    spec = str(tiny_spec.save(tmp_path / "t.yaml"))
    for argv in ([*SEARCH, "--target-macs", "1e99"], ["compare", spec, "--dataset", "digits", "--match-macs", "1e99"]):
        with pytest.raises(SystemExit) as stop:  # beyond any buildable net: refused by the parser
            main([*argv, "--out", str(out)])
        assert stop.value.code == 2
        assert "no net that large can be built" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# 7. a storage that cannot open pins nothing; a refused command leaves no new --out ----------------

def test_failed_storage_pins_nothing_and_a_refusal_leaves_no_new_folder(tmp_path, capsys):
    assert main([*SEARCH, "--target-macs", "2M", "--storage", "bogus://x", "--out", str(tmp_path / "new")]) == 2
    assert "cannot open storage bogus://x" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main([*SEARCH, "--target-macs", "2M", "--storage", "bogus://x", "--out", str(kept)]) == 2
    assert kept.is_dir() and not (kept / "search.yaml").exists()  # the corrected command is not refused


# 8. searches sharing one journal: a study per whole --out path; a busy journal is named -----------

def test_searches_on_one_journal_get_one_study_each_and_a_busy_journal_is_named(tmp_path, capsys):
    import optuna

    from nas.search.engine import SearchConfig, prepare
    from nas.study import locked
    from nas.runfolder.lock import RunLock

    journal = tmp_path / "shared.journal"
    outs = [tmp_path / "p1" / "s", tmp_path / "p3" / "s"]
    configs = [SearchConfig(space="tiny", dataset="digits", target_macs=2_000_000, out=str(out),
                            recipe="smoke", storage=str(journal)) for out in outs]
    for config in configs + configs[:1]:  # the last one resumes the first search's study
        with locked(config.plan()):
            prepare(config)
    assert "resuming search" in capsys.readouterr().out.splitlines()[-1]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert sorted(optuna.get_all_study_names(storage)) == [str(out.resolve()) for out in outs]
    with RunLock(tmp_path, ".shared.journal.lock"):
        before = tree_hash(tmp_path)
        assert main([*SEARCH, "--target-macs", "2M", "--trials", "1", "--storage", str(journal),
                     "--out", str(tmp_path / "p4")]) == 2
        assert f"journal {journal} is in use" in one_error_line(capsys.readouterr().err)
        assert tree_hash(tmp_path) == before and not (tmp_path / "p4").exists()


def test_a_folder_pinned_before_study_names_were_recorded_keeps_its_study(tmp_path):
    import yaml

    from nas.search.engine import SearchConfig

    out = tmp_path / "p1" / "s"
    out.mkdir(parents=True)
    config = SearchConfig(space="tiny", dataset="digits", target_macs=2_000_000, out=str(out),
                          storage=str(tmp_path / "j.journal"))
    assert config.name == str(out.resolve())
    (out / "search.yaml").write_text(yaml.safe_dump(config.to_dict()))  # an older pin: no study key
    assert config.name == "s"


# 5. bounds: phi, blocks and resolution are refused before any work ------------------------------

def test_huge_phi_blocks_and_resolution_are_refused_at_once(tmp_path, tiny_spec, capsys):
    import time

    out = tmp_path / "emit"
    with pytest.raises(SystemExit) as exc:
        main([*EMIT, "--base", "efficientnet-b0", "--phi", "1e6", "--out", str(out)])
    assert exc.value.code == 2
    assert "--phi 1e+06 is beyond +-30" in one_error_line(capsys.readouterr().err)
    start = time.perf_counter()
    assert main([*EMIT, "--base", "efficientnet-b0", "--phi", "30", "--out", str(out)]) == 2
    assert "phi 30 on efficientnet-b0: 3,802 blocks are more than the 2,000" in one_error_line(capsys.readouterr().err)
    deep = tiny_spec.to_dict() | {"stages": ["mbconv_r1_k3_s1_e1_c16"] * 10_000}
    (tmp_path / "deep.yaml").write_text(__import__("yaml").safe_dump(deep))
    assert main(["flops", str(tmp_path / "deep.yaml")]) == 2
    assert "10,000 blocks are more than the 2,000 a spec may have" in one_error_line(capsys.readouterr().err)
    assert main(["flops", "efficientnet-b0", "--resolution", "100000"]) == 2
    assert "resolution 100,000 is above the 65,536 px" in one_error_line(capsys.readouterr().err)
    assert time.perf_counter() - start < 30 and not out.exists()


# 10. parser errors are one line naming the flag, with a pointer to -h ----------------------------

@pytest.mark.parametrize("argv,line", [
    ([*SEARCH, "--target-macs", "2M", "--out", "x", "--trials", "0"],
     "nas search: error: --trials must be >= 1 (got 0); see nas search -h"),
    ([*SEARCH, "--target-macs", "2M", "--out", "x", "--val-fraction", "0"],
     "nas search: error: --val-fraction must be between 0 and 1, both excluded (got 0); see nas search -h"),
    (["train", "s.yaml", "--dataset", "digits", "--val-fraction", "1.5", "--lr", "1"],
     "nas train: error: --val-fraction must be between 0 and 1, both excluded (got 1.5); see nas train -h"),
    (["train", "s.yaml", "--dataset", "digits", "--epochs", "x"],
     "nas train: error: --epochs must be an integer (got 'x'); see nas train -h"),
    ([*SEARCH, "--target-macs", "2M", "--out", "x", "--workers", "-1"],
     "nas search: error: --workers must be >= 1 (got -1); see nas search -h"),
])
def test_parser_errors_are_one_line(argv, line, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == line and "usage" not in err


# 6. emission says when realised MACs miss 2^phi by more than the grid's tolerance ----------------

def test_emission_warns_when_realised_macs_miss_two_to_the_phi(tmp_path, spec_file, capsys):
    import dataclasses

    import pandas as pd

    from scaling.coefficients import TARGET_FACTOR
    from scaling.emit import MISS_TOLERANCE
    from scaling.grid import GridConfig

    default = {f.name: f.default for f in dataclasses.fields(GridConfig)}["tolerance"]
    assert MISS_TOLERANCE == default / TARGET_FACTOR
    out = tmp_path / "emit"
    assert main([*EMIT, "--base", spec_file, "--phi", "-1,0,2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    table = pd.read_csv(out / "scaled.csv")
    assert list(table["misses_2phi"]) == [True, False, True]
    assert "warning: tiny-phim1 realises 0.8309x the base's MACs, not 2^-1 = 0.5x (+66.2 %" in err
    assert "tiny-phi0 realises" not in err and "warning: tiny-phi2 realises" in err


# 9. what used to be a traceback is one line -------------------------------------------------------

def test_huge_decode_binary_spec_and_damaged_search_yaml_are_one_line(tmp_path, spec_file, capsys):
    from nas.data.fit import check_decode_memory

    check_decode_memory("digits", 16, available=2**30)  # digits at 16 px fits in 1 GiB
    assert main(["train", spec_file, "--dataset", "digits", "--data-resolution", "100000", *SMOKE,
                 "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "decoding 1,797 images of digits at 100,000 px needs at least" in line
    assert "use a smaller --data-resolution" in line and not (tmp_path / "run").exists()
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["flops", str(binary)]) == 2
    assert f"{binary} is not a YAML spec (not UTF-8 text)" in one_error_line(capsys.readouterr().err)
    search = tmp_path / "search"
    search.mkdir()
    for text, problem in (("space: tiny\n  bad: [", "is damaged"), ("- a list\n", "not a mapping"),
                          ("space: tiny\ndataset: digits\nout: x\n", "missing key 'target_macs'"),
                          ("space: tiny\ndataset: digits\nout: x\ntarget_macs: many\n", "mistyped 'target_macs'"),
                          ("space: tiny\ndataset: digits\nout: x\ntarget_macs: 1\nevil: 1\n", "unknown key 'evil'")):
        (search / "search.yaml").write_text(text)
        before = tree_hash(tmp_path)
        assert main(["fidelity", str(search), *SMOKE]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"{search / 'search.yaml'} is damaged" in line and problem in line, line
        assert tree_hash(tmp_path) == before


# 11. messages name the file, never advise weights_only=False; --out that is a file -----------------

def test_messages_name_files_and_give_no_unsafe_advice(tmp_path, spec_file, capsys):
    import io
    import tarfile

    archive = tmp_path / "cifar10.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("train/cat/0.jpg", "test/cat/0.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 9
            tar.addfile(info, io.BytesIO(b"not a jpg"))
    assert main(["train", spec_file, "--dataset", "cifar10", "--data-dir", str(archive),
                 "--data-resolution", "32", *SMOKE, "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot decode image train/cat/0.jpg in {archive}" in line and "BytesIO" not in line
    text = tmp_path / "notes.pth"
    text.write_text("hello: text\n")
    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(pickle.dumps({"a": 1}))
    for argv in (["convert", str(text), "--from", "torchvision:efficientnet_b0", "--out", str(tmp_path / "c")],
                 ["convert", str(crafted), "--from", "torchvision:efficientnet_b0", "--out", str(tmp_path / "c")],
                 ["eval", str(crafted), "--dataset", "digits"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "weights_only" not in err and "Weights only" not in err
        assert "cannot read" in one_error_line(err) or "not a readable checkpoint" in one_error_line(err)
    occupied = tmp_path / "file"
    occupied.write_text("mine\n")
    assert main(["train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(occupied)]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: --out {occupied} is a file; choose a folder"
    assert occupied.read_text() == "mine\n"


# 12. a failed download is one line ------------------------------------------------------------------

def test_a_network_error_while_downloading_is_one_line(tmp_path, spec_file, capsys, monkeypatch):
    import urllib.error

    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    assert main(["train", spec_file, "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--download",
                 *SMOKE, "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "downloading CIFAR-10 into" in line and "needs internet" in line and "--data-dir" in line
    assert not (tmp_path / "run").exists()
