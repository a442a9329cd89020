import io
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from nas.data import DataError, load_dataset
from nas.data.cifar import CLASSES
from conftest import CIFAR_ARCHIVE

pytestmark = pytest.mark.skipif(not CIFAR_ARCHIVE.is_file(), reason=f"{CIFAR_ARCHIVE} not present")
PER_CLASS = {"train": 4, "test": 2}


@pytest.fixture(scope="module")
def real_images():
    """A few real CIFAR-10 JPEG files per class and split, read from the shared archive."""
    wanted = {(s, c): n for s, n in PER_CLASS.items() for c in CLASSES}
    files = {}
    with tarfile.open(CIFAR_ARCHIVE) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3 and wanted.get((parts[0], parts[1]), 0) > 0:
                wanted[(parts[0], parts[1])] -= 1
                files[member.name] = tar.extractfile(member).read()
            if not any(wanted.values()):
                break
    return files


def _write_tree(root, files):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _write_tar(path, files, prefix="cifar10/"):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _write_pickles(folder, files):
    folder.mkdir(parents=True)
    arrays = {"train": ([], []), "test": ([], [])}
    for name, data in sorted(files.items()):
        split, cls, _ = name.split("/")
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        arrays[split][0].append(img.transpose(2, 0, 1).reshape(-1))
        arrays[split][1].append(CLASSES.index(cls))
    x, y = np.stack(arrays["train"][0]), arrays["train"][1]
    chunks = np.array_split(np.arange(len(y)), 5)
    for i, idx in enumerate(chunks, 1):
        with (folder / f"data_batch_{i}").open("wb") as f:
            pickle.dump({"data": x[idx], "labels": [y[j] for j in idx]}, f)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump({"data": np.stack(arrays["test"][0]), "labels": arrays["test"][1]}, f)
    return folder


def _signature(ds):
    """Order-independent content: sorted (label, pixel-sum) pairs of train+val and test."""
    def pairs(split):
        sums = split.images.reshape(len(split), -1).long().sum(1).tolist()
        return sorted(zip(split.labels.tolist(), sums))
    return pairs(ds.split("train+val")), pairs(ds.test)


def test_three_layouts_load_the_same_images(real_images, tmp_path):
    tree = _write_tree(tmp_path / "tree", real_images)
    archive = _write_tar(tmp_path / "cifar10-jpeg.tar.gz", real_images)
    pickles = _write_pickles(tmp_path / "pickles" / "cifar-10-batches-py", real_images)
    cache = tmp_path / "cache"
    loaded = [load_dataset("cifar10", data_dir=src, cache_dir=cache, val_fraction=0.25)
              for src in (tree, archive, pickles.parent)]
    for ds in loaded:
        assert ds.num_classes == 10 and ds.resolution == 32 and ds.channels == 3
        assert len(ds.train) + len(ds.val) == 40 and len(ds.test) == 20
        assert len(ds.val) == 10  # 25 %, stratified: one per class
        assert sorted(ds.val.labels.tolist()) == list(range(10))
    assert _signature(loaded[0]) == _signature(loaded[1]) == _signature(loaded[2])
    # the archive was found by name inside its folder too
    assert load_dataset("cifar10", data_dir=tmp_path, cache_dir=cache).source.endswith("cifar10-jpeg.tar.gz")


def test_second_load_hits_the_cache(real_images, tmp_path):
    archive = _write_tar(tmp_path / "c.tar.gz", real_images)
    first = load_dataset("cifar10", data_dir=archive, cache_dir=tmp_path / "cache")
    second = load_dataset("cifar10", data_dir=archive, cache_dir=tmp_path / "cache")
    assert not first.cached and second.cached
    assert (first.train.images == second.train.images).all()
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    load_dataset("cifar10", data_dir=archive, cache_dir=tmp_path / "cache", resolution=24)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # keyed by resolution too


def test_validation_split_is_fixed_and_disjoint(real_images, tmp_path):
    tree = _write_tree(tmp_path / "tree", real_images)
    a = load_dataset("cifar10", data_dir=tree, cache_dir=tmp_path / "c1")
    b = load_dataset("cifar10", data_dir=tree, cache_dir=tmp_path / "c2")
    assert (a.val.images == b.val.images).all()
    train_sums = set(a.train.images.reshape(len(a.train), -1).long().sum(1).tolist())
    val_sums = set(a.val.images.reshape(len(a.val), -1).long().sum(1).tolist())
    assert not train_sums & val_sums


def test_corrupt_jpeg_error_names_the_file(real_images, tmp_path):
    files = dict(real_images)
    victim = sorted(files)[5]
    files[victim] = files[victim][:40]  # truncated
    archive = _write_tar(tmp_path / "broken.tar.gz", files, prefix="")
    with pytest.raises(DataError, match=f"cannot decode image {victim} in .*broken.tar.gz"):
        load_dataset("cifar10", data_dir=archive, cache_dir=tmp_path / "cache")
    tree = _write_tree(tmp_path / "tree", files)
    with pytest.raises(DataError, match=f"cannot decode image .*{victim}"):
        load_dataset("cifar10", data_dir=tree, cache_dir=tmp_path / "cache")


def test_missing_data_gives_a_fix(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 found in .*pass --data-dir DIR .*--download"):
        load_dataset("cifar10", data_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


def test_imagefolder_resizes_and_splits(real_images, tmp_path):
    flat = {}
    for name, data in real_images.items():
        split, cls, file = name.split("/")
        if cls in ("cat", "dog", "ship"):
            flat[f"{cls}/{split}-{file}"] = data
    root = _write_tree(tmp_path / "pets", flat)
    ds = load_dataset(f"imagefolder:{root}", resolution=24, cache_dir=tmp_path / "cache")
    assert ds.classes == ["cat", "dog", "ship"]
    assert ds.resolution == 24
    assert len(ds.train) + len(ds.val) + len(ds.test) == 18
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
