"""Reading the project's YAML files (specs, recipes, spaces) with one-line errors."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import NasError


class NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads `1e-3`, `5e-5` and `1E6` as floats (YAML 1.1,
    which PyYAML follows, wants a dot and a signed exponent: `1.0e-3`)."""


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """yaml.safe_load, with scientific notation such as `1e-3` read as a float."""
    return yaml.load(text, Loader=NumberLoader)


def named_file(name_or_path: str, folder: Path, what: str, error: type[NasError]) -> Path:
    """A path to a YAML file, or the name of one shipped in `folder` (without .yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise error(f"file {path} does not exist; give an existing YAML file or a {what} name")
        return path
    shipped = folder / f"{name_or_path}.yaml"
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise error(f"unknown {what} {name_or_path!r}; use a YAML file or one of {names}")
    return shipped


def read_yaml(path: Path, what: str, error: type[NasError]) -> Any:
    """A YAML mapping from `path`, with one-line errors of kind `error`."""
    try:
        return load_yaml(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise error(f"{path} is not a {what} file (not UTF-8 text); give a YAML {what}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
