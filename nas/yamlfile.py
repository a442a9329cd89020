"""Reading the project's YAML files (specs, recipes, spaces) with one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import NasError


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
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
