"""One-line messages for command-line usage mistakes (an unknown option, a missing argument),
with a did-you-mean: `--epochs 3` most likely meant `--set training.epochs=3`. No TensorFlow."""

from __future__ import annotations

from tftrain.spec.base import printable, suggest


def usage_message(exc) -> str:
    """`exc` (a click UsageError or other ClickException) as one line naming the command."""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    option = getattr(exc, "option_name", None)
    if option is None:
        return printable(f"{where}{exc.format_message()}".rstrip("."), limit=300) + _help_hint(ctx)
    text = f"{where}no such option {printable(option)}"
    key = config_key(option.lstrip("-").replace("-", "_"))
    if key is not None:
        return f"{text}; did you mean --set {key}=...? (config keys are set with --set KEY=VALUE)"
    possibilities = list(getattr(exc, "possibilities", None) or [])
    if ctx is not None:
        possibilities += [name for param in ctx.command.params for name in getattr(param, "opts", ())
                          if name.startswith("--")]
    return text + (suggest(option, possibilities) or _help_hint(ctx))


def _help_hint(ctx) -> str:
    return f"; see {ctx.command_path} --help" if ctx is not None else ""


def config_key(leaf: str) -> str | None:
    """The dotted config key whose last part is `leaf` (`epochs` -> `training.epochs`), if any."""
    from tftrain.spec.messages import _model_in
    from tftrain.spec.schema import Config

    def walk(model, prefix: str):
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            if name == leaf:
                yield path
            nested = _model_in(info.annotation)
            if nested is not None and nested is not model:
                yield from walk(nested, f"{path}.")

    return next(walk(Config, ""), None)
