"""Every command that trains makes the same checks before it takes its folder lock: a
--data-resolution below the input of any net it will train is refused naming the net, the
far-upsampled-data warning is printed once per distinct input size, and the hungriest net is
checked against free memory. Refusals come before training, so these tests train nothing;
the runs they need (a small search, a comparison) use the fake trainer (tests/fakes.py)."""
import re
from pathlib import Path

import pytest

from conftest import ROOT
from nas.cli import main
from nas.spec import HeadSpec
from nas.runfolder.lock import RunLock
from test_safety import one_error_line, tree_hash

DIGITS = ["--dataset", "digits", "--device", "cpu"]
NOTE = re.compile(r"^warning: digits images are 8 px natively; training at (\d+) px", re.M)


def notes(text: str) -> list[int]:
    """The input sizes the far-upsampled-data warnings name, in printed order."""
    return [int(px) for px in NOTE.findall(text)]


@pytest.fixture(scope="module")
def space40(tmp_path_factory) -> str:
    """The tiny space at 40 px (stem stride 2 keeps it cheap): 5x digits' 8 px, so it warns."""
    text = (ROOT / "search_spaces" / "tiny.yaml").read_text()
    text = (text.replace("name: tiny\n", "name: tiny40\n").replace("resolution: 16\n", "resolution: 40\n")
            .replace("stem: {channels: 16, kernel: 3, stride: 1}", "stem: {channels: 16, kernel: 3, stride: 2}"))
    path = tmp_path_factory.mktemp("space") / "tiny40.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def specs(tmp_path, tiny_spec) -> dict:
    """tiny at 16 px, two nets at 40 px and one at 48 px, as spec files."""
    files = {"tiny": tiny_spec, "a40": tiny_spec.replace(name="a40", resolution=40),
             # b40 is another net (a wider head): compare refuses one net under two names
             "b40": tiny_spec.replace(name="b40", resolution=40, head=HeadSpec(96)),
             "c48": tiny_spec.replace(name="c48", resolution=48)}
    return {name: str(spec.save(tmp_path / f"{name}.yaml")) for name, spec in files.items()}


# nas compare --------------------------------------------------------------------------------

def test_compare_refuses_low_data_resolution_warns_once_per_size_and_checks_memory(tmp_path, specs, capsys):
    earlier = tmp_path / "earlier"
    assert main(["scale", "emit", "--base", specs["tiny"], "--coefficients", "1.2,1.1,1.15", "--phi", "1",
                 "--out", str(earlier)]) == 0
    before = tree_hash(earlier)
    capsys.readouterr()
    compare = ["compare", specs["tiny"], specs["a40"], *DIGITS, "--recipe", "smoke"]
    assert main(compare + ["--data-resolution", "16", "--out", str(earlier)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--data-resolution 16 is below a40's 40 px input" in line
    assert "pass --data-resolution 40 or more" in line
    assert tree_hash(earlier) == before

    out = tmp_path / "busy"  # another run holds the folder: refused after the checks, untrained
    with RunLock(out):
        assert main(["compare", specs["tiny"], specs["a40"], specs["b40"], specs["c48"], *DIGITS,
                     "--recipe", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert notes(err) == [40, 48]  # 16 px is near digits' size; 40 px once for two nets
    assert "another `nas` run is working in" in one_error_line(err)

    huge = tmp_path / "huge"
    assert main(["scale", "emit", "--base", specs["tiny"], "--coefficients", "1.2,1.1,1.15", "--phi", "30",
                 "--out", str(huge)]) == 0
    capsys.readouterr()
    assert main(["compare", specs["tiny"], str(huge / "tiny-phi30.yaml"), *DIGITS, "--recipe", "smoke",
                 "--out", str(tmp_path / "big")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "training tiny-phi30 at" in line and "GiB available" in line
    assert not (tmp_path / "big").exists()


# nas scale study ----------------------------------------------------------------------------

def test_scale_study_refuses_data_below_its_grown_nets_and_warns_once_per_size(tmp_path, specs, capsys):
    out = tmp_path / "study"
    study = ["scale", "study", "--targets", "2x", *DIGITS, "--recipe", "smoke", "--out", str(out)]
    # the base is 16 px, so 16 px data serves it; the nets grown to 2x MACs are larger
    assert main(study + ["--base", specs["tiny"], "--data-resolution", "16"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert re.search(r"--data-resolution 16 is below tiny-resolution2x's \d+ px input", line), line
    assert "pass --data-resolution" in line and "or more" in line
    assert not out.exists()

    with RunLock(out):
        assert main(study + ["--base", specs["a40"]]) == 2
    err = capsys.readouterr().err
    sizes = notes(err)
    # base, then the grown sizes once each (the compound and resolution-only nets may share one)
    assert sizes[0] == 40 and len(sizes) >= 2 and sizes == sorted(set(sizes))
    assert "another `nas` run is working in" in one_error_line(err)


# nas pipeline -------------------------------------------------------------------------------

def cheap_pipeline(space: str, out: Path, *extra: str) -> list[str]:
    """A real pipeline that trains nothing: without baselines and without redraws, in hard mode at
    the space's smallest MACs the first (sampled) candidate is rejected untrained, and the timeout
    then stops the search step."""
    from nas.search.space import load_space

    low, _ = load_space(space).macs_range(10)
    return ["pipeline", "--space", space, *DIGITS, "--objective", "hard", "--target-macs", str(low),
            "--baselines", "none", "--budget-draws", "0", "--trials", "1", "--timeout", "0.001", "--recipe", "smoke",
            "--out", str(out), *extra]


def test_pipeline_refuses_data_below_the_space_before_its_lock_and_warns_once(tmp_path, space40, capsys):
    out = tmp_path / "pipe"
    assert main(cheap_pipeline(space40, out)) == 0
    printed = capsys.readouterr().out
    assert notes(printed) == [40]  # at the start and again by the search step: printed once
    assert "[1/7] search: stopped at --timeout with 0/1 candidates trained" in printed
    before = tree_hash(out)
    assert main(cheap_pipeline(space40, out, "--data-resolution", "32")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--data-resolution 32 is below space tiny40's 40 px input" in line
    assert "set the spec's resolution to 32" in line
    assert tree_hash(out) == before
    fresh = tmp_path / "fresh"
    assert main(cheap_pipeline(space40, fresh, "--data-resolution", "32")) == 2
    assert not fresh.exists()


def test_each_pipeline_step_decodes_its_data_at_its_largest_net(tmp_path, tiny_spec):
    """A later step trains nets grown on the way (here a 24 px one next to the 16 px base): its
    data is decoded at 24 px, so the grown net sees real detail rather than 16 px images
    upsampled; --data-resolution is a floor, never a refusal half-way through a run."""
    from nas.recipe import resolve_recipe
    from scaling.pipeline import Pipeline, PipelineConfig

    config = PipelineConfig(space="tiny", dataset="digits", target_macs=1_500_000, out=str(tmp_path / "p"),
                            data_resolution=16, device="cpu")
    grown = tiny_spec.replace(name="tiny-resolution2x", resolution=24)
    pipeline = Pipeline(config)
    data = pipeline._check([tiny_spec, grown], resolve_recipe("smoke"))
    assert data.resolution == 24 and pipeline.dataset.resolution == 16
    assert pipeline.data_for([tiny_spec]) is pipeline.dataset  # one load per size
    floor = Pipeline(PipelineConfig(**{**config.__dict__, "data_resolution": 32}))
    assert floor.data_for([tiny_spec, grown]).resolution == 32
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_compare_decodes_at_its_largest_net_for_every_net(tmp_path, specs, fake_trainer):
    """Every net of one comparison sees the same images, decoded at the largest input."""
    import json

    out = tmp_path / "cmp"
    assert main(["compare", specs["tiny"], specs["a40"], *DIGITS, "--recipe", "smoke", "--out", str(out)]) == 0
    sizes = {json.loads(p.read_text())["fingerprint"]["data"]["resolution"] for p in out.rglob("result.json")}
    assert sizes == {40}


# nas fidelity -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def search40(tmp_path_factory, space40) -> tuple[Path, str]:
    """A search at 40 px with three candidates (the fake trainer) and a one-epoch recipe."""
    import fakes

    folder = tmp_path_factory.mktemp("fidelity")
    recipe = folder / "flash.yaml"
    recipe.write_text("name: flash\nepochs: 1\nbatch_size: 64\nlr: 0.1\ntrain_fraction: 0.2\n")
    out = folder / "search"
    with pytest.MonkeyPatch.context() as patch:
        fakes.install(patch)
        assert main(["search", "--space", space40, *DIGITS, "--target-macs", "2M", "--trials", "3",
                     "--sampler", "random", "--recipe", str(recipe), "--out", str(out)]) == 0
    return out, str(recipe)


def test_fidelity_checks_memory_before_its_lock_and_warns_once(search40, capsys, monkeypatch):
    from nas.fidelity import FidelityPlan, fidelity_inputs
    from nas.train import memory

    search, recipe = search40
    before = tree_hash(search)
    specs = [spec for _, spec in fidelity_inputs(search, FidelityPlan(top=2, random=1)).models]
    need = max(memory.training_bytes(spec, 64) for spec in specs)
    monkeypatch.setattr(memory, "available_bytes", lambda device: need // 2)  # a smaller machine
    capsys.readouterr()
    assert main(["fidelity", str(search), "--top", "2", "--random", "1", "--noise-seeds", "0",
                 "--recipe", recipe, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert notes(err) == [40]  # three candidates at 40 px: one warning
    line = one_error_line(err)
    assert re.search(r"training t\d+ at 40 px with batch 64 needs about", line), line
    assert re.search(r"use a recipe with batch_size: \d+ or less", line), line
    assert tree_hash(search) == before  # no fidelity/ folder, no lock file
