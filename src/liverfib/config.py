"""Typed, frozen training configs: defaults < YAML < CLI flags; unknown keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from liverfib.errors import ConfigError

__all__ = ["ResolvableConfig"]


class ResolvableConfig(BaseModel):
    """Base for training configs: ``resolve(yaml, overrides)`` merges and validates them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def resolve(
        cls, yaml_path: str | Path | None, overrides: dict[str, Any] | None, *, what: str = "config", hint: str = ""
    ) -> Self:
        """Merge defaults < YAML < ``overrides``; ``what`` names the config in errors, ``hint`` helps."""
        from pydantic import ValidationError

        data: dict[str, Any] = {}
        if yaml_path is not None:
            import yaml

            yaml_path = Path(yaml_path)
            if not yaml_path.is_file():
                raise ConfigError(f"{yaml_path}: {what} file not found{hint}")
            loaded = yaml.safe_load(yaml_path.read_text())
            if not isinstance(loaded, dict):
                raise ConfigError(f"{yaml_path}: expected a mapping of option: value")
            data.update(loaded)
        data.update(overrides or {})
        try:
            return cls(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ConfigError(f"{what} option '{where}': {first['msg']}") from None
