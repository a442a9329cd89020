import json

import pytest

from nas.cli import main


@pytest.mark.slow
def test_train_then_eval_then_refuse_overwrite(tmp_path, capsys, tiny_spec):
    spec = tiny_spec.save(tmp_path / "tiny.yaml")
    out = tmp_path / "run"
    assert main(["train", str(spec), "--dataset", "digits", "--recipe", "smoke", "--epochs", "3",
                 "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 3/3" in printed and "img/s" in printed and "ETA" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["epochs_run"] == 3 and result["test_acc"] is not None
    assert (out / "metrics.csv").read_text().count("\n") == 4
    assert main(["eval", str(out), "--dataset", "digits", "--split", "test", "--json",
                 "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == result["test_acc"] and report["images"] == 359
    assert main(["train", str(spec), "--dataset", "digits", "--recipe", "smoke", "--device", "cpu",
                 "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    # resuming a finished run trains nothing more
    assert main(["train", str(spec), "--dataset", "digits", "--recipe", "smoke", "--epochs", "3",
                 "--device", "cpu", "--out", str(out), "--resume"]) == 0
    assert "epoch 1/3" not in capsys.readouterr().out


def test_train_cli_bad_inputs(tmp_path, capsys):
    assert main(["train", "efficientnet-b0", "--dataset", "digits", "--recipe", "nope",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    # at 32 px, so the memory check that comes first passes whatever memory is free
    assert main(["train", "efficientnet-b0", "--resolution", "32", "--dataset", "cifar10", "--data-dir",
                 str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no CIFAR-10 found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["eval", str(tmp_path), "--dataset", "digits"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
