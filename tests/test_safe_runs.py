"""Run folders know what they hold: reuse only on an exact fingerprint match, refuse another
configuration (naming it) or, with --force, train into a fresh sub-folder; eval reads its data
from the run; locks, full and read-only disks, flag names and Ctrl-C. Every refusal is one
line, exit 2, and leaves the earlier folder byte-for-byte unchanged."""
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, sigint_default
from nas.cli import build_parser, main
from nas.runfolder.lock import RunLock
from test_safety import SEARCH, one_error_line, tree_hash

SMOKE = ["--recipe", "smoke", "--device", "cpu"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def spec_file(tmp_path, tiny_spec):
    return str(tiny_spec.save(tmp_path / "tiny.yaml"))


def _image_folder(root: Path, classes=("cat", "dog"), per_class: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (16, 16, 3)) + 120 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


# 1. compare: reuse only on an exact match, --force into a fresh sub-folder --------------------

def test_compare_refuses_another_data_set_in_the_same_out_and_force_trains_beside_it(
        tmp_path, spec_file, capsys, fake_trainer):
    out = tmp_path / "cmp"
    assert main(["compare", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 0
    assert "epoch 2/2" in capsys.readouterr().out  # epoch progress of every run
    before = tree_hash(out)
    folder = _image_folder(tmp_path / "imgs")
    again = ["compare", spec_file, "--dataset", f"imagefolder:{folder}", *SMOKE, "--out", str(out)]
    assert main(again) == 2  # the case: a digits result tabulated as the image folder's
    line = one_error_line(capsys.readouterr().err)
    assert f"{out / 'tiny' / 'seed0'} holds a run of another configuration (spec differs" in line
    assert "--force" in line
    assert tree_hash(out) == before
    assert main([*again, "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"writing into {out / 'run-2'}" in printed and "tiny seed 0: training" in printed
    assert {k: v for k, v in tree_hash(out).items() if not k.startswith("run-2/")} == before
    forced = json.loads((out / "run-2" / "tiny" / "seed0" / "result.json").read_text())
    assert forced["fingerprint"]["data"]["num_classes"] == 2
    assert "imagefolder:imgs" in (out / "run-2" / "compare.md").read_text()
    assert main(again) == 0  # the same command again finds its forced folder, --force or not
    printed = capsys.readouterr().out
    assert f"writing into {out / 'run-2'}" in printed and "done earlier" in printed
    assert main(["compare", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "done earlier" in printed and "run-2" not in printed
    # a third configuration is refused (run-2 is another command's, not a free folder) ...
    both = tree_hash(out)
    third = ["compare", spec_file, "--dataset", "digits", "--recipe", "demo", "--device", "cpu", "--out", str(out)]
    assert main(third) == 2
    assert "holds a run of another configuration (recipe differs" in one_error_line(capsys.readouterr().err)
    assert tree_hash(out) == both
    assert main([*third, "--force"]) == 0  # ... and forced into run-3, touching neither
    assert f"writing into {out / 'run-3'}" in capsys.readouterr().out
    assert {k: v for k, v in tree_hash(out).items() if not k.startswith("run-3/")} == both


def test_a_net_named_like_a_forced_folder_is_refused_and_not_taken_for_one(tmp_path, tiny_spec, capsys):
    from nas.runfolder.runs import choose_out, fit_of_runs, reruns

    named = str(tiny_spec.replace(name="run-2").save(tmp_path / "run2.yaml"))
    assert main(["compare", named, "--dataset", "digits", *SMOKE, "--out", str(tmp_path / "c")]) == 2
    assert "may not be named 'run-2'" in one_error_line(capsys.readouterr().err)
    # a folder called run-2 that --force did not make (no mark) is never taken for a forced one
    out = tmp_path / "o"
    (out / "run-2" / "seed0").mkdir(parents=True)
    (out / "run-2" / "seed0" / "result.json").write_text(json.dumps({"fingerprint": {"spec": {"a": 1}}}))
    (out / "x").mkdir()
    (out / "x" / "result.json").write_text(json.dumps({"fingerprint": {"spec": {"a": 1}}}))
    assert reruns(out) == []
    wanted = {"spec": {"a": 2}}
    assert choose_out(out, lambda f: fit_of_runs([(f / "x", wanted)]), force=True) == out / "run-3"


def test_study_refuses_another_recipe_and_force_runs_it_beside(tmp_path, spec_file, capsys, fake_trainer):
    recipes = []
    for lr in (0.1, 0.05):  # one short epoch on a tenth of the data: the folders matter here
        recipes.append(tmp_path / f"lr{lr}.yaml")
        recipes[-1].write_text(f"name: lr{lr}\nepochs: 1\nbatch_size: 64\nlr: {lr}\ntrain_fraction: 0.1\n")
    out = tmp_path / "study"
    study = ["scale", "study", "--base", spec_file, "--targets", "2x", "--dataset", "digits", "--device", "cpu",
             "--out", str(out)]
    assert main([*study, "--recipe", str(recipes[0])]) == 0
    before = tree_hash(out)
    capsys.readouterr()
    assert main([*study, "--recipe", str(recipes[1])]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{out / 'runs'}" in line and "recipe differs (lr, name)" in line and "--force" in line
    assert tree_hash(out) == before
    assert main([*study, "--recipe", str(recipes[1]), "--force"]) == 0
    assert (out / "run-2" / "study.md").is_file() and (out / "run-2" / ".nas-forced").is_file()
    assert {k: v for k, v in tree_hash(out).items() if not k.startswith("run-2/")} == before


def test_fidelity_takes_force():
    assert build_parser().parse_args(["fidelity", "s", "--force"]).force


# 1. train: --force, --resume, and Ctrl-C saving its state --------------------------------------

def test_train_force_starts_over_in_a_fresh_sub_folder_and_resume_finds_it(tmp_path, spec_file, capsys):
    """Real runs (--resume reads the checkpoint), each one short epoch on a tenth of the data."""
    out = tmp_path / "run"
    flash = tmp_path / "flash.yaml"
    flash.write_text("name: flash\nepochs: 1\nbatch_size: 64\nlr: 0.1\ntrain_fraction: 0.1\n")
    base = ["train", spec_file, "--dataset", "digits", "--recipe", str(flash), "--device", "cpu", "--out", str(out)]
    assert main(base) == 0
    before = tree_hash(out)
    assert main([*base, "--lr", "0.05", "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds a run of another configuration (recipe differs (lr))" in line and "--force" in line
    assert main([*base, "--lr", "0.05", "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"{out} holds a run; --force: starting over in {out / 'run-2'}" in printed
    assert f"-> {out / 'run-2'}" in printed
    assert {k: v for k, v in tree_hash(out).items() if not k.startswith("run-2/")} == before
    assert main([*base, "--lr", "0.05", "--resume"]) == 0  # finds the forced run of its configuration
    printed = capsys.readouterr().out
    assert f"resuming the run of this configuration in {out / 'run-2'}" in printed and "--force" not in printed
    assert main([*base, "--force"]) == 0  # another fresh start: run-3, the others untouched
    assert (out / "run-3" / "result.json").is_file()


@pytest.mark.slow
def test_ctrl_c_in_train_is_one_line_and_resume_finishes_the_run(tmp_path, spec_file):
    recipe = tmp_path / "long.yaml"
    recipe.write_text("name: long\nepochs: 6\nbatch_size: 64\nlr: 0.1\ntrain_fraction: 0.1\n")
    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "nas", "train", spec_file, "--dataset", "digits", "--recipe", str(recipe),
           "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=sigint_default, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.05)
    if not (out / "checkpoint.pt").exists() or proc.poll() is not None:
        proc.kill()
        pytest.fail(f"no epoch ended within 120 s, or the run ended first: {proc.communicate()[1]}")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert re.fullmatch(rf"interrupted; {re.escape(str(out / 'checkpoint.pt'))} holds epoch \d+: re-run "
                        r"the same command with --resume to go on from there", last), last
    saved = int(re.search(r"holds epoch (\d+)", last).group(1))
    assert 1 <= saved < 6
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert f"resuming tiny after epoch {saved}/6" in done.stdout
    assert json.loads((out / "result.json").read_text())["epochs_run"] == 6


# 1. eval reads the data set, its copy and its validation share from the run -------------------

def test_eval_reads_its_data_from_the_run_and_refuses_a_mismatch(tmp_path, spec_file, capsys):
    out = tmp_path / "run"
    assert main(["train", spec_file, "--dataset", "digits", *SMOKE, "--val-fraction", "0.2",
                 "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    before = tree_hash(out)
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "test", "--json", "--device", "cpu"]) == 0  # as in the README
    assert json.loads(capsys.readouterr().out)["accuracy"] == result["test_acc"]
    assert main(["eval", str(out), "--split", "val", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == result["fingerprint"]["data"]["sizes"][1]
    assert main(["eval", str(out), "--split", "val", "--val-fraction", "0.1", "--device", "cpu"]) == 2
    assert "the val split has" in one_error_line(capsys.readouterr().err)
    assert main(["eval", str(out), "--dataset", "cifar10", "--device", "cpu"]) == 2
    assert "was trained on digits, not cifar10" in one_error_line(capsys.readouterr().err)
    folder = _image_folder(tmp_path / "two")
    assert main(["eval", str(out), "--dataset", f"imagefolder:{folder}", "--device", "cpu"]) == 2
    one_error_line(capsys.readouterr().err)
    assert tree_hash(out) == before


def test_eval_of_an_image_folder_run_needs_no_dataset_and_refuses_other_classes(tmp_path, spec_file, capsys):
    from nas.data import load_dataset
    from nas.train import TrainError, evaluate_checkpoint

    folder = _image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    assert main(["train", spec_file, "--dataset", f"imagefolder:{folder}", *SMOKE, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "imagefolder:imgs" and report["images"] > 0
    with pytest.raises(TrainError, match="has 2 classes but digits has 10"):
        evaluate_checkpoint(out, load_dataset("digits"), "test", "cpu")


# 2. locks: train, compare and a second writer of one journal are refused -----------------------

def test_train_and_compare_refuse_a_folder_another_run_holds(tmp_path, spec_file, capsys):
    out = tmp_path / "busy"
    with RunLock(out):
        before = tree_hash(out)
        assert main(["train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 2
        assert "another `nas` run is working in" in one_error_line(capsys.readouterr().err)
        assert main(["compare", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 2
        assert "another `nas` run is working in" in one_error_line(capsys.readouterr().err)
        assert tree_hash(out) == before


def test_a_search_writing_another_searchs_journal_is_refused_while_it_runs(tmp_path, capsys, fake_trainer):
    first = tmp_path / "first"
    assert main([*SEARCH, "--target-macs", "2M", "--trials", "1", "--out", str(first)]) == 0
    capsys.readouterr()
    assert (first / ".study.journal.lock").is_file()  # the default journal has its own lock too
    journal = first / "study.journal"
    with RunLock(first, ".study.journal.lock"):  # the first search still running
        before = tree_hash(first)
        assert main([*SEARCH, "--target-macs", "2M", "--trials", "2", "--storage", str(journal),
                     "--study-name", "first", "--out", str(tmp_path / "second")]) == 2
        assert f"journal {journal} is in use" in one_error_line(capsys.readouterr().err)
        assert tree_hash(first) == before and not (tmp_path / "second").exists()


# 4. full and read-only disks -----------------------------------------------------------------------

def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_the_disk_is_one_line(tmp_path, spec_file):
    """No room for the file (here a file-size limit: EFBIG, as ENOSPC on a full disk): one line
    naming the checkpoint, exit 2, and no half-written file."""
    out = tmp_path / "full"
    cmd = [sys.executable, "-m", "nas", "train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV,
                          preexec_fn=_limit_file_size(16 * 1024))
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert line == (f"error: cannot write {out / 'checkpoint.pt'}: File too large; free some space or "
                    "choose another --out")
    assert not (out / "checkpoint.pt").exists() and not (out / ".checkpoint.pt.tmp").exists()


@pytest.fixture
def small_mount(tmp_path):
    """A real tmpfs of a few KiB (full disk), mounted read-write and read-only; skipped where
    this process may not mount (not root, or no mount namespace)."""
    mounts = []

    def mount(name: str, options: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.slow
def test_full_disk_is_one_line_naming_the_file(small_mount, spec_file):
    disk = small_mount("full", "size=48k")
    out = disk / "run"
    cmd = [sys.executable, "-m", "nas", "train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(rf"error: cannot write (into )?{re.escape(str(out))}\S*: No space left on device; "
                        r"free some space or choose another --out", one_error_line(done.stderr))


@pytest.mark.parametrize("command", ["train", "compare", "search", "emit", "single", "pipeline"])
def test_read_only_out_is_one_line_for_every_command(small_mount, spec_file, command, capsys):
    disk = small_mount("ro", "ro,size=64k")
    out = str(disk / "out")
    argv = {"train": ["train", spec_file, "--dataset", "digits", *SMOKE],
            "compare": ["compare", spec_file, "--dataset", "digits", *SMOKE],
            "search": [*SEARCH, "--target-macs", "2M", "--trials", "1"],
            "emit": ["scale", "emit", "--base", spec_file, "--coefficients", "1.2,1.1,1.15", "--phi", "1"],
            "single": ["scale", "single", "--base", spec_file, "--dimension", "width", "--targets", "2x"],
            "pipeline": ["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1.5M",
                         "--trials", "1", "--recipe", "smoke", "--device", "cpu"]}[command]
    assert main([*argv, "--out", out]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write {out}") and "Read-only file system; choose a writable --out" in line


# 4. a huge input whose weights fit: nas flops counts it without tracing ------------------------

def test_flops_of_a_huge_input_skips_the_trace_instead_of_running_out_of_memory(capsys):
    assert main(["flops", "efficientnet-b0", "--resolution", "60000"]) == 0
    printed = capsys.readouterr().out
    assert "fvcore trace skipped" in printed and "MACs (analytic)" in printed


def test_truncated_checkpoint_is_one_line_for_eval_resume_and_init(tmp_path, spec_file, capsys):
    out = tmp_path / "run"
    assert main(["train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out)]) == 0
    ckpt = out / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    before = tree_hash(out)
    capsys.readouterr()
    for argv in (["eval", str(out), "--device", "cpu"],
                 ["train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(out), "--resume"],
                 ["train", spec_file, "--dataset", "digits", *SMOKE, "--out", str(tmp_path / "ft"),
                  "--init", str(out)]):
        assert main(argv) == 2, argv
        assert "is not a readable checkpoint" in one_error_line(capsys.readouterr().err)
    assert tree_hash(out) == before and not (tmp_path / "ft").exists()


# 3. spec names never leave --out, end to end ----------------------------------------------------

@pytest.mark.parametrize("name", ["../../escaped", "/tmp/nas-absolute-name"])
def test_spec_names_with_paths_stay_inside_out(tmp_path, tiny_spec, name, capsys, fake_trainer):
    spec = str(tiny_spec.replace(name=name).save(tmp_path / "named.yaml"))
    work = tmp_path / "work"
    for argv in (["scale", "emit", "--base", spec, "--coefficients", "1.2,1.1,1.15", "--phi", "1",
                  "--out", str(work / "emit")],
                 ["compare", spec, "--dataset", "digits", *SMOKE, "--out", str(work / "cmp")]):
        assert main(argv) == 0, capsys.readouterr().err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p == tmp_path / "named.yaml" or work in p.parents for p in written)
    assert not Path("/tmp/nas-absolute-name").exists() and not Path("/tmp/nas-absolute-name-phi1.yaml").exists()
    assert not (tmp_path.parent / "escaped").exists()


# 5. flag names: one meaning per name, old names kept ---------------------------------------------

def test_seed_flags_mean_one_thing_everywhere(capsys):
    parse = build_parser().parse_args
    train = ["train", "s.yaml", "--dataset", "digits", "--out", "x"]
    assert parse([*train, "--seeds", "3"]).seed == parse([*train, "--seed", "3"]).seed == 3
    assert parse(["compare", "a", "--dataset", "digits", "--out", "x", "--seed", "0,1"]).seeds == (0, 1)
    grid = ["scale", "grid", "--base", "b", "--dataset", "digits", "--out", "x"]
    assert parse([*grid, "--grid-seeds", "3"]).grid_seeds == parse([*grid, "--seeds", "3"]).grid_seeds == 3
    pipe = ["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "1M", "--out", "x"]
    assert parse([*pipe, "--grid-seeds", "2", "--download"]).download
    for argv, words in (([*train, "--seeds", "1,2"], "trains one run"),
                        ([*grid, "--seeds", "0,1,2"], "is not a count"),
                        ([*grid, "--closest", "-1"], "must be >= 1"),
                        ([*pipe, "--grid-closest", "-1"], "must be >= 0"),
                        ([*pipe, "--grid-step", "nan"], "must be finite"),
                        ([*pipe, "--fidelity-top", "0"], "must be >= 1")):
        with pytest.raises(SystemExit) as exc:
            parse(argv)
        assert exc.value.code == 2 and words in one_error_line(capsys.readouterr().err), argv


def test_negative_phi_needs_no_equals_sign(tmp_path, spec_file, capsys):
    out = tmp_path / "small"
    assert main(["scale", "emit", "--base", spec_file, "--coefficients", "1.2,1.1,1.15", "--phi", "-1,0.5",
                 "--out", str(out)]) == 0
    assert (out / "tiny-phim1.yaml").is_file() and (out / "tiny-phi0.5.yaml").is_file()


def test_train_resolution_trains_the_net_at_that_input(tmp_path, spec_file, fake_trainer):
    out = tmp_path / "r24"
    assert main(["train", spec_file, "--dataset", "digits", *SMOKE, "--resolution", "24", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["resolution"] == 24 and result["fingerprint"]["spec"]["resolution"] == 24


def test_pipeline_download_reaches_every_data_step():
    from scaling.pipeline import PipelineConfig

    from nas.commands.options import config_from

    args = build_parser().parse_args(["pipeline", "--space", "tiny", "--dataset", "cifar10", "--target-macs",
                                      "1M", "--out", "x", "--download"])
    assert config_from(PipelineConfig, args, phis=(1.0,)).download is True


def _subcommand_help(words: list[str]) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        build_parser().parse_args([*words, "--help"])
    return buffer.getvalue()


def test_readme_inline_commands_name_real_sub_commands_and_flags():
    """Commands quoted inside README prose (`nas compare --match-macs T ...`) are fragments that
    the parser cannot run; each must still name a real sub-command and only its real flags."""
    text = (ROOT / "README.md").read_text()
    spans = [s for s in re.findall(r"`(nas [^`]+)`", text) if "\n" not in s]
    assert len(spans) >= 8
    for span in spans:
        words = span.split()[1:]
        command = words[:2] if words[0] == "scale" and len(words) > 1 and not words[1].startswith("-") \
            else words[:1]
        known = set(re.findall(r"--[\w-]+", _subcommand_help(command)))
        used = {w.split("=")[0].strip("[]|") for w in words if w.lstrip("[").startswith("--")}
        assert used <= known, f"README `{span}` uses {sorted(used - known)}, not options of nas {' '.join(command)}"
