"""The config layer: everything `tftrain validate` runs, without TensorFlow, at the bottom of the
house. It imports nothing of tftrain but `errors` and the model types' schema classes
(tftrain.models); tests/resume/test_architecture.py holds that.

Separation of concerns (who owns which fact; the check of a key lives beside its definition
unless it reads several keys, then it is a named check in `checks`):

| module      | owns                                                                              |
|-------------|-----------------------------------------------------------------------------------|
| base        | the strict base class, count bounds (epochs, steps, batch, seed, threads), name    |
|             | checks by table lookup (`NameCheck`), and the wording of values in messages        |
| schema      | `Config` and its data/loss/optimizer/metrics/tracking blocks                       |
| training    | the `training:` block (loop, length, recipes, speed, distribution)                 |
| catalog     | Keras names and parameters: losses (and the task each trains), metrics,            |
|             | optimizers, activations, augmentations; kept equal to Keras by tests/config/test_catalog  |
| schedules   | learning-rate schedules and their arguments                                        |
| datasets    | one entry per dataset name: its options class, where its test split comes from,    |
|             | what kind of data it holds                                                          |
| checks      | cross-key checks (a registry of small named functions) and `RunFacts`: the task,  |
|             | whether the run validates, what it logs and monitors; everything else asks it      |
| distill     | the `distill:` block, and its teacher run's files checked against the config       |
| tune        | the `tune:` block (objective, space, sampler, pruner, budget)                      |
| tune_checks | a tune spec against the config it tunes (key paths, values, objective)             |
| compose     | `extends` chains, deep merge, `${env:...}`, and the source of every key            |
| safe_yaml   | the one YAML reader for user files: plain data, YAML 1.2 numbers, no bombs         |
| loading     | file -> compose -> `--set` -> schema -> checks: `load_config`, `validate`          |
| messages    | pydantic's errors as one-line messages naming the key path                          |

Adding to the schema without slowing `validate` (issue 21): every class reachable from `Config`
has its validator built by each process that validates, whatever the config uses, while a table
read by lookup costs nothing until a value is checked. So:
- a table of names (layers, schedules, augmentations, search spaces) is plain data checked by
  lookup (`NameCheck(kind, table)` or a `_Named` subclass), never a `Literal`, Enum or union with
  one member per entry; a large table only some configs use lives in a module of its own, read
  through `NameCheck(kind, loader)` with a cached loader;
- parameters that depend on a chosen name (`data.options`) are one class per name, validated in
  a field validator, built on first use (`defer_build`);
- validators are built inside `building_validators()`, which skips pydantic's plugin lookup.
"""
