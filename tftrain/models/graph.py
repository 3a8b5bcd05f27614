"""`model.type: graph`: named nodes of built-in Keras layers wired by `inputs:`, for residual
and multi-branch networks (Keras's functional API, written as data).

    model:
      type: graph
      nodes:            # `input` is the model's input; the last node is its output
        - {name: c1, layer: {conv2d: {filters: 16, kernel_size: 3, padding: same}}}
        - {name: c2, layer: {conv2d: {filters: 16, kernel_size: 3, padding: same}}, inputs: [c1]}
        - {name: sum, layer: add, inputs: [c1, c2]}
        - name: block                # a group: its nodes, `repeat` times in a row
          repeat: 3
          nodes:
            - {name: conv, layer: {conv2d: {filters: 16, kernel_size: 3, padding: same}}}
            - {name: add, layer: add, inputs: [input, conv]}   # `input`: the group's input
        - {name: pool, layer: global_average_pooling2d}
        - {name: out, layer: {dense: {units: 10}}}

A node without `inputs` takes the node before it (the first one, the input). A group repeats its
nodes `repeat` times: iteration k's nodes are named `<group>_<k>_<node>`, `input` inside a group
is the group's input (the previous iteration's output from the second one on), and other names
refer to the group's own nodes first, then to the nodes around it. A later node refers to the
group by its name: the output of its last iteration. Checked without TensorFlow: unknown or
unused nodes, cycles, and layers given the wrong number of inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tftrain.models.base import ModelSchema, ModelSpec, model_input
from tftrain.models.layer_config import activation_of, check_expanded_size, check_layer, entry_parts
from tftrain.models.layers import ARGUMENT_INPUTS, LIST_INPUTS
from tftrain.models.sequential import parameters_text
from tftrain.spec.base import show, suggest

INPUT = "input"  # the name of the model's input (inside a group: the group's input)
# `columns.NAME`: a typed table column's own features (tftrain.data.tables), a model input of its own.
COLUMN_PREFIX = "columns."
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_NODE_KEYS = ("name", "layer", "inputs")
_GROUP_KEYS = ("name", "repeat", "inputs", "nodes")
_TWO_INPUTS = frozenset({"subtract", "dot"})


@dataclass(frozen=True)
class Node:
    """One layer of the expanded graph."""

    name: str  # unique in the model (a group's nodes carry its name and iteration)
    entry: dict  # the normalised layer entry
    inputs: tuple[str, ...]  # names of the nodes it reads (INPUT: the model's input)
    where: str  # its place in the config, for messages: [3].nodes[1]


# -- checking the written form ---------------------------------------------------------------


def check_nodes(value: Any, where: str = "") -> list[dict[str, Any]]:
    """Nodes and groups, each checked and normalised (names, layers, inputs)."""
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else show(value)
        raise ValueError(f"{where}: " * bool(where) + "expected a non-empty list of nodes such as "
                         f"{{name: out, layer: {{dense: {{units: 10}}}}}}, got {got}")
    items = [_check_item(item, f"{where}[{i}]") for i, item in enumerate(value)]
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        if item["name"] in seen:
            raise ValueError(f"{where}[{i}]: name {item['name']!r} is used twice (also model.nodes{where}"
                             f"{seen[item['name']]})")
        seen[item["name"]] = f"[{i}]"
    return items


def _check_item(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a node {{name, layer, inputs}} or a group {{name, repeat, nodes}}, "
                         f"got {show(value)}")
    group = "repeat" in value or "nodes" in value
    keys = _GROUP_KEYS if group else _NODE_KEYS
    for key in value:
        if key not in keys:
            what = "a group" if group else "a node"
            raise ValueError(f"{where}: unknown key {show(key)} in {what}{suggest(str(key), keys)}; "
                             f"valid keys: {', '.join(keys)}")
    name = value.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name == INPUT:
        problem = "required key is missing" if name is None else (
            f"{INPUT!r} names the model's input" if name == INPUT else
            f"expected a name of letters, digits, '_', '.' or '-' starting with a letter, got {show(name)}")
        raise ValueError(f"{where}.name: {problem}")
    inputs = _check_inputs(value.get("inputs"), f"{where} ({name}).inputs")
    if group:
        return _check_group(value, name, inputs, where)
    if "layer" not in value:
        raise ValueError(f"{where} ({name}).layer: required key is missing")
    layer = check_layer(value["layer"], f"{where} ({name}).layer")
    if "name" in entry_parts(layer)[1]:
        raise ValueError(f"{where} ({name}).layer: a node's layer takes the node's name; remove its 'name'")
    node = {"name": name, "layer": layer}
    return node if inputs is None else {**node, "inputs": inputs}


def _check_group(value: dict, name: str, inputs: list[str] | None, where: str) -> dict[str, Any]:
    repeat = value.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise ValueError(f"{where} ({name}).repeat: expected a positive integer, got {show(repeat)}")
    if inputs is not None and len(inputs) != 1:
        raise ValueError(f"{where} ({name}).inputs: a group takes one input (its nodes read it as "
                         f"'{INPUT}'), got {len(inputs)}")
    if "nodes" not in value:
        raise ValueError(f"{where} ({name}).nodes: required key is missing")
    group = {"name": name, "repeat": repeat, "nodes": check_nodes(value["nodes"], f"{where}.nodes")}
    return group if inputs is None else {**group, "inputs": inputs}


def _check_inputs(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of node names (or '{INPUT}'), got {show(value)}")
    return value


# -- expanding groups and resolving names ------------------------------------------------------


def _output(item: dict, prefix: str) -> str:
    """The expanded name of what `item` outputs: a node itself, a group its last node's."""
    if "nodes" not in item:
        return prefix + item["name"]
    return _output(item["nodes"][-1], f"{prefix}{item['name']}_{item['repeat']}_")


def _expand(items: list[dict], scope_input: str, outer: dict[str, str], prefix: str, where: str) -> list[Node]:
    """The nodes of one pass through `items`; names resolve locally, then in `outer`."""
    local = {item["name"]: _output(item, prefix) for item in items}
    visible = {**outer, **local, INPUT: scope_input}
    nodes: list[Node] = []
    previous = scope_input
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        written = item.get("inputs")
        inputs = [previous] if written is None else [_resolve(n, visible, f"{here} ({item['name']}).inputs")
                                                     for n in written]
        if "nodes" in item:
            entry_input = inputs[0]
            for k in range(1, item["repeat"] + 1):
                nodes += _expand(item["nodes"], entry_input, visible, f"{prefix}{item['name']}_{k}_",
                                 f"{here}.nodes")
                entry_input = _output(item["nodes"][-1], f"{prefix}{item['name']}_{k}_")
        else:
            nodes.append(Node(prefix + item["name"], item["layer"], tuple(inputs), here))
        previous = local[item["name"]]
    return nodes


def _resolve(name: str, visible: dict[str, str], where: str) -> str:
    if name in visible:
        return visible[name]
    if name.startswith(COLUMN_PREFIX) and len(name) > len(COLUMN_PREFIX):
        return name  # a data column (checked against the data when the model is built)
    names = sorted(visible)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise ValueError(f"{where}: unknown node {show(name)}{suggest(name, names)}; known here: {shown}")


def expand_graph(items: list[dict], outputs: list[str] | None = None) -> list[Node]:
    """Every node of the model in a valid computation order, checked: unique names, input
    counts, no cycle, and every node used (the last one is the output; or `outputs`, several)."""
    nodes = _expand(items, INPUT, {}, "", "")
    by_name: dict[str, Node] = {}
    for node in nodes:
        if node.name in by_name:
            raise ValueError(f"{node.where}: node name {node.name!r} is used twice (also model.nodes"
                             f"{by_name[node.name].where})")
        by_name[node.name] = node
        _check_input_count(node)
    order = _topological(nodes, by_name)
    output = _output(items[-1], "")
    used = {name for node in nodes for name in node.inputs}
    heads = set(outputs or [output])
    if not heads <= set(by_name):
        return order  # an unknown output: GraphModel's own check says which
    for node in nodes:
        if node.name not in used and node.name not in heads:
            said = f"the outputs are {', '.join(outputs)}" if outputs else f"the last node, {output}, is the model's output"
            raise ValueError(f"{node.where} ({node.name}): no node uses its output ({said}); add it to a node's "
                             "inputs or remove it")
    if INPUT not in used and not any(name.startswith(COLUMN_PREFIX) for name in used):
        raise ValueError(f"no node reads '{INPUT}', the model's input (or a data column, columns.NAME)")
    return order


def _check_outputs(outputs: list[str], by_name: dict[str, Node]) -> None:
    """`outputs`: existing nodes, each once."""
    for i, name in enumerate(outputs):
        if name not in by_name:
            names = sorted(by_name)
            raise ValueError(f".outputs.{i}: unknown node {show(name)}{suggest(name, names)}; nodes: "
                             + ", ".join(names[:12]) + (", ..." if len(names) > 12 else ""))
        if outputs.index(name) != i:
            raise ValueError(f".outputs.{i}: node {name!r} is listed twice; each output is its own node")


def _check_input_count(node: Node) -> None:
    kind, count = entry_parts(node.entry)[0], len(node.inputs)
    if kind in LIST_INPUTS and count < 2:
        problem = f"{kind} merges several inputs, got {count}"
    elif kind in _TWO_INPUTS and count != 2:
        problem = f"{kind} takes two inputs, got {count}"
    elif kind in ARGUMENT_INPUTS and count > 3:
        problem = f"{kind} takes query, value and key at most, got {count} inputs"
    elif kind not in LIST_INPUTS | ARGUMENT_INPUTS and count != 1:
        problem = f"{kind} takes one input, got {count} (merge them first with add or concatenate)"
    else:
        return
    raise ValueError(f"{node.where} ({node.name}).inputs: {problem}")


def _topological(nodes: list[Node], by_name: dict[str, Node]) -> list[Node]:
    """Nodes ordered so that each comes after its inputs (list order where free); a cycle is a
    ValueError naming it."""
    order: list[Node] = []
    state: dict[str, str] = {}  # visiting | done
    for start in nodes:
        stack = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                if state.get(node.name) == "done":
                    continue
                state[node.name] = "visiting"
                path.append(node.name)
            if i < len(node.inputs):
                stack.append((node, i + 1))
                dep = node.inputs[i]
                if dep == INPUT or dep.startswith(COLUMN_PREFIX) or state.get(dep) == "done":
                    continue
                if state.get(dep) == "visiting":
                    cycle = path[path.index(dep):] + [dep]
                    raise ValueError(f"{node.where} ({node.name}).inputs: the graph has a cycle: "
                                     + " -> ".join(reversed(cycle)))
                stack.append((by_name[dep], 0))
            else:
                state[node.name] = "done"
                path.pop()
                order.append(node)
    return order


class GraphModel(ModelSchema):
    """Named nodes of Keras layers wired by `inputs`; `input` is the data, the last node the output."""

    type: Literal["graph"]
    # null: the last node is the output; several outputs: their nodes, one per label column
    # (data.options.label, in the same order; tftrain.spec.outputs). Before `nodes`, which it checks.
    outputs: Annotated[list[str], Field(min_length=1)] | None = None
    nodes: list[Any]  # no sensible default: the nodes are the model

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any, info: ValidationInfo) -> list:
        items = check_nodes(value)
        check_expanded_size(items, "nodes")
        expand_graph(items, info.data.get("outputs"))  # unknown or unused nodes, cycles, input counts: errors now
        return items

    @model_validator(mode="after")
    def _known_outputs(self) -> "GraphModel":
        if self.outputs:
            _check_outputs(self.outputs, {node.name: node for node in self.graph()})
        return self

    def graph(self) -> list[Node]:
        """The expanded nodes in computation order (the output last)."""
        return expand_graph(self.nodes, self.outputs)

    def node_activations(self) -> dict[str, str | None]:
        """Each node's activation (the outputs' tell whether they are logits)."""
        return {node.name: activation_of(node.entry) for node in self.graph()}

    def layer_rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for node in self.graph():
            kind, args = entry_parts(node.entry)
            rows.append((node.name, kind, parameters_text(args), ", ".join(node.inputs)))
        return rows

    def output_activation_name(self) -> str | None:
        """The output node's activation (None: raw values, or logits)."""
        return activation_of(self.graph()[-1].entry)

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """The functional model: each node's layer called on its inputs' outputs, in order; the
        output node computes in spec.output_dtype (float32 under mixed precision)."""
        import keras

        from tftrain.models.keras_build import call_layer, kind_of, make_layer

        nodes = self.graph()
        tensors = self._inputs(spec, nodes)
        inputs = tensors.pop("")
        heads = self.outputs or [nodes[-1].name]
        for node in nodes:
            where = f"model.nodes{node.where} ({node.name})"
            dtype = spec.output_dtype if node.name in heads else None
            layer = make_layer(node.entry, node.name, where, dtype)
            tensors[node.name] = call_layer(layer, kind_of(node.entry), [tensors[n] for n in node.inputs], where,
                                            spec.dataset, spec.input_shape)
        if self.outputs:  # a dict keyed by label column: Keras names each output's loss and metrics by it
            from tftrain.models.outputs import named_outputs

            return keras.Model(inputs, named_outputs(spec, self.outputs, tensors), name="graph")
        return keras.Model(inputs, tensors[nodes[-1].name], name="graph")

    def _inputs(self, spec: ModelSpec, nodes: list[Node]) -> dict:
        """The tensors nodes may read by name: `input`, and a typed table's `columns.NAME`
        (each column's own features); under "" the Keras input."""
        from tftrain.errors import DataError
        from tftrain.models.base import table_input
        from tftrain.models.keras_build import image_input, kind_of

        if spec.table is None:
            inputs, x = model_input(spec)
            columns = {}
        else:
            inputs, x, columns = table_input(spec)
        tensors = {"": inputs, **{COLUMN_PREFIX + name: t for name, t in columns.items()}}
        if x is not None:
            tensors[INPUT] = image_input(x, spec, [kind_of(n.entry) for n in nodes if INPUT in n.inputs])
        for node in nodes:
            for name in node.inputs:
                if name not in tensors and (name.startswith(COLUMN_PREFIX) or name == INPUT):
                    known = ", ".join(COLUMN_PREFIX + c for c in columns) or "none: the data has no typed columns"
                    raise DataError(f"model.nodes{node.where} ({node.name}).inputs: {name!r} is not an input of "
                                    f"this data (data columns: {known})" + suggest(name, list(tensors)))
        from tftrain.data.tables.preprocessing import is_sequence

        read = {name for n in nodes for name in n.inputs}
        sequences = [] if spec.table is None or spec.table.sequence_only() else [
            COLUMN_PREFIX + c.name for c in spec.table.columns if is_sequence(c)]
        unread = [name for name in sequences if name not in read]
        if unread:
            raise DataError(f"model.nodes: no node reads {unread[0]} (a token sequence, which is not part of "
                            f"'{INPUT}'); add it to a node's inputs")
        return tensors

    def check(self, spec: ModelSpec) -> None:
        """Build symbolically: a node that cannot take its inputs, or an output of the wrong
        width, is a one-line error naming the node."""
        from tftrain.models.keras_build import check_symbolically

        last = self.graph()[-1]
        if self.outputs:  # each output's width is checked as the dict of outputs is made (tftrain.models.outputs)
            from tftrain.models.keras_build import build_symbolically

            build_symbolically(lambda: self.build(spec, load_weights=False))
            return
        check_symbolically(lambda: self.build(spec, load_weights=False), spec,
                           f"model.nodes{last.where} ({last.name})")
