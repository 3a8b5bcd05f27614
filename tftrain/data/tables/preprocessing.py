"""A typed table's preprocessing: fitted once on the training split, then built into the model.

`fit_table` computes what Keras's preprocessing layers need (a numeric column's mean and
variance, a category's or a text column's vocabulary, tf-idf weights) on the training split
only, with Keras's own `adapt` for vocabularies. The result is plain data (`TablePreprocessing`):
it goes into the model spec, the model is built from it with explicit vocabularies and
statistics (`encode`), and its fingerprint is part of the run's resume state, so a resumed run
never trains on preprocessing computed differently (tftrain.data.tables.state).

What each column type becomes (the model's feature vector is their concatenation):

    numeric   the number, blanks/missing markers -> the training mean, normalized; plus a 0/1 "was missing" flag
    category  StringLookup over the training vocabulary (one OOV bucket): one-hot, or Embedding(embedding)
    hashed    Hashing(bins): one-hot, or Embedding(embedding)
    text      TextVectorization: multi_hot | count | tf_idf vectors, or int token sequences
              (with embedding: Embedding + average pooling; without: the sequence itself, for a text model)
    crosses   HashedCrossing(bins) of category/hashed columns, one-hot
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from tftrain.errors import DataError

ADAPT_BATCH = 4096  # texts per batch when adapting and counting documents: bounded memory


@dataclass(frozen=True)
class FittedColumn:
    """One input column and what was learned of it on the training split."""

    name: str
    index: int  # its place in a row of the model's input
    type: str  # numeric | category | hashed | text
    options: dict = field(default_factory=dict)  # the column's config (embedding, bins, max_tokens, ...)
    mean: float | None = None  # numeric
    variance: float | None = None  # numeric
    vocabulary: tuple[str, ...] | None = None  # category, text: the learned tokens, most frequent first
    idf: tuple[float, ...] | None = None  # text, tf_idf: the learned tokens' inverse document frequencies


@dataclass(frozen=True)
class TablePreprocessing:
    """Everything the model's preprocessing layers are built from: plain data, JSON-able."""

    columns: tuple[FittedColumn, ...]
    crosses: tuple[dict, ...] = ()
    missing: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """A digest of every statistic and vocabulary (what a resume checks it recomputed)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def sequence_only(self) -> bool:
        """One text column in int mode without an embedding: the model gets its token sequence."""
        (first, *rest) = self.columns
        return not rest and not self.crosses and first.type == "text" and first.options.get("output_mode") == "int" \
            and first.options.get("embedding") is None

    def describe(self) -> dict:
        """Per column its type and what was learned (sizes, not the vocabularies), for summary.json."""
        info = {}
        for c in self.columns:
            info[c.name] = {"type": c.type, **({"mean": c.mean, "variance": c.variance} if c.type == "numeric" else {}),
                            **({"vocabulary": len(c.vocabulary)} if c.vocabulary is not None else {})}
        return {"columns": info, "fingerprint": self.fingerprint()}


def fit_table(options: dict, names: list[str], x: np.ndarray) -> TablePreprocessing:
    """Fit every typed column of `options` on the training rows `x` ((N, columns) text cells)."""
    missing = tuple(options["missing"])
    columns = []
    for index, name in enumerate(names):
        column = options["columns"][name]
        fit = {"numeric": _numeric, "category": _category, "hashed": _hashed, "text": _text}[column["type"]]
        columns.append(fit(name, index, column, x[:, index], missing))
    return TablePreprocessing(tuple(columns), tuple(options["crosses"]), missing)


def check_sequences(prep: TablePreprocessing, model_type: str) -> None:
    """Token sequences (a text column in int mode without an embedding) cannot join the other
    columns' feature vector: a graph model takes them by name (`columns.NAME`), or it is the
    only column; anything else is a one-line error."""
    sequences = [c.name for c in prep.columns if is_sequence(c)]
    if sequences and not prep.sequence_only() and model_type != "graph":
        raise DataError(f"data.options.columns.{sequences[0]}: a text column with output_mode: int gives token "
                        "sequences, which cannot join the other columns' features; give it embedding: N (averaged), "
                        "or output_mode: multi_hot | count | tf_idf, or use a graph model whose node takes "
                        f"columns.{sequences[0]}")


def is_sequence(column: FittedColumn) -> bool:
    """A text column in int mode without an embedding: its features are token ids (batch, tokens)."""
    return column.type == "text" and column.options.get("output_mode") == "int" and column.options.get("embedding") is None


def _numeric(name: str, index: int, column: dict, cells: np.ndarray, missing: tuple) -> FittedColumn:
    values = numbers_or_nan(cells, missing)
    present = values[np.isfinite(values)]
    if not present.size:
        raise DataError(f"data.options.columns.{name}: no value in the training split is a number "
                        "(every cell is missing)")
    mean = float(present.mean())
    return FittedColumn(name, index, "numeric", column, mean=mean, variance=float(((present - mean) ** 2).mean()))


def numbers_or_nan(cells: np.ndarray, missing: tuple) -> np.ndarray:
    """Text cells -> float64, NaN where a cell is a missing marker (as ParsedNumber reads them)."""
    cells = np.where(np.isin(cells, list(missing)), "nan", cells)
    return np.asarray(cells, dtype=str).astype(np.float64)


def _category(name: str, index: int, column: dict, cells: np.ndarray, missing: tuple) -> FittedColumn:
    import keras

    lookup = keras.layers.StringLookup()
    lookup.adapt(np.asarray(cells, dtype=str))
    vocabulary = tuple(lookup.get_vocabulary(include_special_tokens=False))
    if len(vocabulary) > column["max_values"]:
        raise DataError(f"data.options.columns.{name}: {len(vocabulary):,} distinct values in the training split, more "
                        f"than max_values {column['max_values']:,}; use type: hashed (with bins), or raise max_values")
    return FittedColumn(name, index, "category", column, vocabulary=vocabulary)


def _hashed(name: str, index: int, column: dict, cells: np.ndarray, missing: tuple) -> FittedColumn:
    return FittedColumn(name, index, "hashed", column)


def _text_layer(column: dict, mode: str, vocabulary=None, idf=None, name: str | None = None):
    import keras

    return keras.layers.TextVectorization(
        max_tokens=column["max_tokens"], output_mode=mode, ngrams=column["ngrams"],
        output_sequence_length=column["sequence_length"] if mode == "int" else None,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
        idf_weights=list(idf) if idf is not None else None, name=name)


def _text(name: str, index: int, column: dict, cells: np.ndarray, missing: tuple) -> FittedColumn:
    """The vocabulary by TextVectorization.adapt; for tf_idf, each learned token's
    log(1 + N / (1 + documents holding it)), Keras's own formula, counted with the adapted layer."""
    import tensorflow as tf

    mode = column["output_mode"]
    texts = tf.data.Dataset.from_tensor_slices(np.asarray(cells, dtype=object).astype(str)).batch(ADAPT_BATCH)
    layer = _text_layer(column, "multi_hot" if mode == "tf_idf" else mode)
    layer.adapt(texts)
    vocabulary = tuple(layer.get_vocabulary(include_special_tokens=False))
    if not vocabulary:
        raise DataError(f"data.options.columns.{name}: the training split's texts hold no words")
    idf = None
    if mode == "tf_idf":
        documents = np.zeros(len(vocabulary) + 1)
        for batch in texts:
            documents += layer(batch).numpy().sum(axis=0)
        idf = tuple(float(v) for v in np.log(1 + len(cells) / (1 + documents[1:])))  # [0] is the OOV bucket
    return FittedColumn(name, index, "text", column, vocabulary=vocabulary, idf=idf)


def _layer_name(name: str, what: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{what}"


def encode(prep: TablePreprocessing, rows):
    """The Keras layers from raw rows ((batch, columns) strings) to the model's features."""
    return encode_columns(prep, rows)[0]


def encode_columns(prep: TablePreprocessing, rows) -> tuple:
    """(the features every column but token sequences joins into, or the one column's sequence;
    each column's own features by name, for a graph model's `columns.NAME` inputs)."""
    import keras

    from tftrain.data.tables.layers import ParsedNumber, RawColumn

    by_name, raw = {}, {}
    for c in prep.columns:
        if c.type == "numeric":
            parsed = ParsedNumber(c.index, c.mean, list(prep.missing), name=_layer_name(c.name, "parsed"))(rows)
            by_name[c.name] = keras.layers.Normalization(mean=[c.mean, 0.0], variance=[c.variance, 1.0],
                                                         name=_layer_name(c.name, "normalized"))(parsed)
            continue
        raw[c.name] = cells = RawColumn(c.index, name=_layer_name(c.name, "cells"))(rows)
        by_name[c.name] = _encode_strings(c, cells)
    parts = [by_name[c.name] for c in prep.columns if not is_sequence(c)]
    for i, cross in enumerate(prep.crosses):
        parts.append(keras.layers.HashedCrossing(cross["bins"], output_mode="one_hot", name=f"cross_{i}")(
            tuple(raw[name] for name in cross["columns"])))
    if not parts:  # token sequences only
        return (by_name[prep.columns[0].name] if len(prep.columns) == 1 else None), by_name
    return (keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]), by_name


def _encode_strings(c: FittedColumn, cells):
    """A category, hashed or text column's cells -> its features."""
    import keras

    embedding = c.options.get("embedding")
    if c.type == "category":
        ids = keras.layers.StringLookup(vocabulary=list(c.vocabulary), output_mode="int" if embedding else "one_hot",
                                        name=_layer_name(c.name, "lookup"))(cells)
        size = len(c.vocabulary) + 1
    elif c.type == "hashed":
        # (batch, 1), not (batch,): Hashing's symbolic one-hot shape of a rank-1 input drops the
        # batch axis ((bins,): Keras 3.15), which Concatenate then refuses; the values are the same.
        column = cells if embedding else keras.layers.Reshape((1,), name=_layer_name(c.name, "column"))(cells)
        ids = keras.layers.Hashing(c.options["bins"], output_mode="int" if embedding else "one_hot",
                                   name=_layer_name(c.name, "hashed"))(column)
        size = c.options["bins"]
    else:
        mode = c.options["output_mode"]
        ids = _text_layer(c.options, mode, c.vocabulary, c.idf, name=_layer_name(c.name, "tokens"))(cells)
        if not embedding:
            return ids
        embedded = keras.layers.Embedding(len(c.vocabulary) + 2, embedding, mask_zero=True,
                                          name=_layer_name(c.name, "embedding"))(ids)
        return keras.layers.GlobalAveragePooling1D(name=_layer_name(c.name, "pooled"))(embedded)
    if not embedding:
        return ids
    return keras.layers.Embedding(size, embedding, name=_layer_name(c.name, "embedding"))(ids)
