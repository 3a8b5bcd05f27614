"""Baseline 4 (CLI floor): the least a typer CLI does to validate a YAML config with pydantic.

A typer command with a path argument and a repeatable --set option (the parameters of `tftrain
validate`) reads the file with PyYAML's C loader and validates it against a pydantic model of
two fields; nothing of tftrain is imported. compare.py's cli case times it as a whole process
beside `tftrain validate`: what is left between the two is tftrain's own cost, the rest is what
typer, pydantic and PyYAML cost any such program (typer 0.29 checks every parameter value
through a pydantic TypeAdapter, and pydantic's plugin loader imports importlib.metadata).

    python bench/baselines/typer_validate.py validate configs/mnist_dense.yaml
"""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """A group, as tftrain's commands are."""


@app.command()
def validate(config: Annotated[Path, typer.Argument()],
             set_: Annotated[list[str], typer.Option("--set")] = []) -> None:  # noqa: B006
    """Read CONFIG and check its `name` and `seed`."""
    import yaml
    from pydantic import BaseModel, ConfigDict

    class Config(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        name: str | None = None
        seed: int | None = 0

    raw = yaml.load(config.read_text(), Loader=yaml.CSafeLoader)  # noqa: S506 (the safe C loader)
    print(f"{config}: ok ({Config.model_validate(raw).seed})")


if __name__ == "__main__":
    app()
