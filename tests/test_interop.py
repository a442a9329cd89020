"""Weights in and out: nas convert (torchvision/timm), nas train --init, nas export.

Real models with random weights (and random BatchNorm statistics, so that a wrong
eps or a swapped running mean would show), small inputs, no downloads.
"""
import json

import optuna
import pytest
import torch
import torchvision
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from nas.builder import build
from nas.cli import main
from nas.interop.convert import convert
from nas.presets import load_preset
from nas.spec import ArchSpec
from nas.train import load_checkpoint

timm = pytest.importorskip("timm")
onnxruntime = pytest.importorskip("onnxruntime")

RES = 32


def _source(zoo, name, num_classes):
    torch.manual_seed(0)
    if zoo == "torchvision":
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    else:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


def _save(model, path):
    torch.save(model.state_dict(), path)
    return str(path)


def _ours(run_dir):
    spec, state = load_checkpoint(run_dir)
    model = build(spec).eval()
    model.load_state_dict(state["weights"])
    return spec, model


@torch.no_grad()
def _diff(a, b, res=RES, batch=2):
    x = torch.randn(batch, 3, res, res, generator=torch.Generator().manual_seed(1))
    return float((a(x) - b(x)).abs().max())


@pytest.mark.parametrize("zoo, name, preset", [
    ("torchvision", "efficientnet_b0", "efficientnet-b0"),
    ("torchvision", "mobilenet_v2", "mobilenet-v2"),
    ("torchvision", "mnasnet1_0", "mnasnet-b1"),
    ("torchvision", "resnet18", "resnet-18"),
    ("timm", "efficientnet_b0", "efficientnet-b0"),
    ("timm", "mobilenetv2_100", "mobilenet-v2"),
])
def test_convert_gives_the_source_outputs(tmp_path, capsys, zoo, name, preset):
    source = _source(zoo, name, num_classes=7)
    weights = _save(source, tmp_path / "w.pth")
    out = tmp_path / "run"
    assert main(["convert", weights, "--from", f"{zoo}:{name}", "--out", str(out),
                 "--check-resolution", str(RES)]) == 0
    assert "max abs output difference" in capsys.readouterr().out
    spec, ours = _ours(out)
    assert spec.name == preset and spec.num_classes == 7
    bn = next(m for m in source.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert spec.bn.eps == bn.eps and spec.bn.momentum == pytest.approx(bn.momentum)
    assert _diff(source, ours) <= 1e-5
    info = json.loads((out / "convert.json").read_text())
    assert info["source"] == f"{zoo}:{name}" and info["max_abs_diff"] <= 1e-5
    raw = torch.load(out / "checkpoint.pt", weights_only=True)  # plain data only
    assert raw["epoch"] == 0 and raw["history"] == [] and raw["format"] == 1
    assert (out / "spec.yaml").is_file()


def test_convert_accepts_wrapped_state_dicts(tmp_path):
    source = _source("torchvision", "resnet18", num_classes=3)
    path = tmp_path / "wrapped.pt"
    torch.save({"epoch": 5, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}},
               path)
    result = convert(path, "torchvision:resnet18", tmp_path / "run", check_resolution=RES,
                     log=lambda line: None)
    assert result.max_abs_diff <= 1e-5 and result.spec.num_classes == 3


def test_convert_refuses_bad_sources_and_mismatched_files(tmp_path, capsys):
    r18 = _source("torchvision", "resnet18", num_classes=4)
    weights = _save(r18, tmp_path / "r18.pt")
    out = str(tmp_path / "run")
    for bad, message in (("torchvision:resnet_nonesuch", "torchvision has no model 'resnet_nonesuch'"),
                         ("keras:resnet18", "is not torchvision:NAME or timm:NAME"),
                         ("torchvision:vgg11", "no default preset for torchvision:vgg11")):
        assert main(["convert", weights, "--from", bad, "--out", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert main(["convert", weights, "--from", "torchvision:resnet50", "--out", out]) == 2
    err = capsys.readouterr().err
    assert ("first differing tensor layer1.0.conv1.weight [64, 64, 3, 3] vs ours "
            "blocks.0.conv1.0.weight [64, 64, 1, 1]") in err
    mbv2 = _source("torchvision", "mobilenet_v2", num_classes=4).state_dict()
    truncated = dict(list(mbv2.items())[:100])
    torch.save(truncated, tmp_path / "cut.pt")
    assert main(["convert", str(tmp_path / "cut.pt"), "--from", "torchvision:mobilenet_v2",
                 "--out", out]) == 2
    err = capsys.readouterr().err
    assert "first differing tensor nothing vs ours blocks." in err and "source has 100 tensors" in err
    torch.save({"not": "weights"}, tmp_path / "junk.pt")
    assert main(["convert", str(tmp_path / "junk.pt"), "--from", "torchvision:resnet18",
                 "--out", out]) == 2
    assert "holds no state_dict" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """torchvision MobileNetV2 (5 classes) imported onto a 32-px mobilenet-v2 spec."""
    tmp = tmp_path_factory.mktemp("converted")
    load_preset("mobilenet-v2").replace(resolution=RES).save(tmp / "mbv2-32.yaml")
    source = _source("torchvision", "mobilenet_v2", num_classes=5)
    weights = _save(source, tmp / "mbv2.pth")
    assert main(["convert", weights, "--from", "torchvision:mobilenet_v2", "--spec",
                 str(tmp / "mbv2-32.yaml"), "--out", str(tmp / "run")]) == 0
    return tmp / "run"


@pytest.fixture(scope="module")
def quick_recipe(tmp_path_factory):
    """The smoke recipe on a tenth of digits' training split: plumbing only."""
    path = tmp_path_factory.mktemp("recipe") / "quick.yaml"
    path.write_text("name: quick\nepochs: 1\nbatch_size: 32\nlr: 0.05\ndrop_path: 0.0\n"
                    "dropout: 0.0\nbn_momentum: 0.1\ntrain_fraction: 0.1\n")
    return str(path)


@pytest.fixture(scope="module")
def finetuned(converted, quick_recipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetuned") / "run"
    assert main(["train", str(converted / "spec.yaml"), "--dataset", "digits", "--recipe", quick_recipe,
                 "--lr", "1e-7", "--device", "cpu", "--no-test",
                 "--init", str(converted), "--out", str(out)]) == 0
    return out


def test_finetune_from_converted_weights_resets_the_classifier(converted, finetuned, capsys):
    _, start = load_checkpoint(converted)
    spec, end = load_checkpoint(finetuned)
    assert spec.num_classes == 10 and end["spec"]["bn"]["eps"] == 1e-5
    assert end["weights"]["classifier.weight"].shape == (10, 1280)
    stem = "stem.0.0.weight"  # started from the imported weights, barely moved at lr 1e-7
    change = (end["model"][stem] - start["weights"][stem]).norm() / start["weights"][stem].norm()
    assert change < 1e-3
    # `nas eval` reads the fine-tuned run and the imported one's format alike
    assert main(["eval", str(finetuned), "--dataset", "digits", "--split", "val", "--json",
                 "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] > 0


def test_finetune_from_a_trained_checkpoint(tmp_path, capsys, tiny_run, converted, quick_recipe):
    base = ["train", str(tiny_run / "spec.yaml"), "--dataset", "digits", "--recipe", quick_recipe,
            "--device", "cpu", "--no-test"]
    assert main(base + ["--init", str(tiny_run / "checkpoint.pt"),
                        "--out", str(tmp_path / "kept")]) == 0
    assert "classifier kept (10 classes)" in capsys.readouterr().out
    assert main(base + ["--init", str(tiny_run), "--reset-classifier",
                        "--out", str(tmp_path / "reset")]) == 0
    assert "classifier re-initialised (--reset-classifier)" in capsys.readouterr().out
    assert main(base + ["--init", str(converted), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "does not fit tiny" in err and "stem.0.0.weight is [32, 3, 3, 3] there, [16, 3, 3, 3] here" in err
    assert main(base + ["--reset-classifier", "--out", str(tmp_path / "x")]) == 2
    assert "--reset-classifier needs --init" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(quick_recipe, tmp_path_factory):
    """A tiny net (SE, SiLU, 16 px) trained for one short epoch."""
    tmp = tmp_path_factory.mktemp("tiny")
    spec = ArchSpec.from_dict({
        "name": "tiny", "resolution": 16, "num_classes": 10,
        "stem": {"channels": 16, "kernel": 3, "stride": 1},
        "stages": ["mbconv_r1_k3_s1_e1_c16_se0.25", "mbconv_r2_k3_s2_e4_c24_se0.25"],
        "head": {"channels": 64}}).save(tmp / "tiny.yaml")
    assert main(["train", str(spec), "--dataset", "digits", "--recipe", quick_recipe,
                 "--device", "cpu", "--no-test", "--out", str(tmp / "run")]) == 0
    return tmp / "run"


def test_export_onnx_runs_in_onnxruntime(tiny_run, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(out)]) == 0
    assert "max abs output difference" in capsys.readouterr().out
    spec, ours = _ours(tiny_run)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [spec.resolution, spec.resolution]
    for batch in (1, 4):  # dynamic batch axis
        x = torch.randn(batch, 3, spec.resolution, spec.resolution)
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        with torch.no_grad():
            assert (got - ours(x)).abs().max() <= 1e-4


def test_export_torchscript_matches_eager(tiny_run, tmp_path):
    out = tmp_path / "net.pt"
    assert main(["export", str(tiny_run / "checkpoint.pt"), "--format", "torchscript",
                 "--out", str(out)]) == 0
    spec, ours = _ours(tiny_run)
    assert _diff(torch.jit.load(str(out)), ours, res=spec.resolution, batch=5) <= 1e-5


def test_export_torchvision_round_trips(finetuned, tmp_path, capsys, tiny_run):
    out = tmp_path / "tv.pth"
    assert main(["export", str(finetuned), "--format", "torchvision", "--out", str(out)]) == 0
    reference = torchvision.models.mobilenet_v2(num_classes=10).eval()
    reference.load_state_dict(torch.load(out, weights_only=True))
    _, ours = _ours(finetuned)
    assert _diff(reference, ours) <= 1e-5
    assert main(["convert", str(out), "--from", "torchvision:mobilenet_v2", "--spec",
                 str(finetuned / "spec.yaml"), "--out", str(tmp_path / "back")]) == 0
    _, back = _ours(tmp_path / "back")
    assert _diff(back, ours) == 0
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--format", "torchvision", "--out", str(tmp_path / "t")]) == 2
    assert "tiny has no torchvision counterpart" in capsys.readouterr().err


def test_search_journal_opens_with_optunas_public_api(tmp_path, quick_recipe):
    """What optuna-dashboard reads: `optuna-dashboard RUN_DIR/study.journal`."""
    out = tmp_path / "search"
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--recipe", quick_recipe,
                 "--device", "cpu", "--target-macs", "1.5M", "--trials", "2", "--seed", "1",
                 "--pruner", "none", "--out", str(out)]) == 0
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    study = optuna.load_study(study_name=None, storage=storage)
    trained = [t for t in study.trials if t.user_attrs.get("status") == "trained"]
    assert len(trained) == 2
    for t in trained:
        assert t.user_attrs["arch"].startswith(("mbconv", "ds", "conv"))
        assert t.user_attrs["macs"] > 0 and 0 <= t.user_attrs["val_acc"] <= 1
