"""A typed table's preprocessing: fitted once on the training split, then built into the model.

`fit_table` computes what Keras's preprocessing layers need (a numeric column's mean and
variance, a category's or a text column's vocabulary, tf-idf weights) on the training split
only, in one pass over batches of its rows (Keras's own adapt, a batch at a time, for the
vocabularies): rows in memory and a table that streams are fitted by the same code. The
result is plain data (`TablePreprocessing`): it goes into the model spec, the model is built
from it with explicit vocabularies and statistics (`encode`), and its fingerprint is part of
the run's resume state, so a resumed run never trains on preprocessing computed differently
(tftrain.data.tables.state).

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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from tftrain.errors import DataError

ADAPT_BATCH = 4096  # rows per batch when fitting: bounded memory


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


def fit_table(options: dict, names: list[str], batches: Iterable) -> TablePreprocessing:
    """Fit every typed column of `options` in one pass over the training rows, given as `batches`
    of (n, columns) text cells (NumPy arrays, or string tensors of a streamed table): memory is
    bounded by a batch and what is learned (counts per distinct value), never by the table."""
    missing = tuple(options["missing"])
    fitters = [_FITTERS[options["columns"][name]["type"]](name, index, options["columns"][name], missing)
               for index, name in enumerate(names)]
    for batch in batches:
        for fitter in fitters:
            fitter.update(batch[:, fitter.index])
    return TablePreprocessing(tuple(fitter.result() for fitter in fitters), tuple(options["crosses"]), missing)


def array_batches(x: np.ndarray, size: int = ADAPT_BATCH) -> Iterator[np.ndarray]:
    """Rows in memory as fit_table's batches."""
    return (x[start:start + size] for start in range(0, len(x), size))


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


class _Fitter:
    """What one column learns from the training rows, batch by batch (`update`), then `result`."""

    def __init__(self, name: str, index: int, column: dict, missing: tuple):
        self.name, self.index, self.column, self.missing = name, index, column, missing

    def update(self, cells) -> None:
        pass

    def result(self) -> FittedColumn:
        return FittedColumn(self.name, self.index, self.column["type"], self.column)


class _Numeric(_Fitter):
    """Mean and (population) variance of the cells that are numbers, merged batch by batch (Chan
    et al.'s pairwise update: no sum of squares to lose precision in)."""

    count, mean, m2 = 0, 0.0, 0.0

    def update(self, cells) -> None:
        values = numbers_or_nan(as_text(cells), self.missing)
        present = values[np.isfinite(values)]
        if not present.size:
            return
        n, mean = present.size, float(present.mean())
        total, delta = self.count + n, mean - self.mean
        self.mean += delta * n / total
        self.m2 += float(((present - mean) ** 2).sum()) + delta ** 2 * self.count * n / total
        self.count = total

    def result(self) -> FittedColumn:
        if not self.count:
            raise DataError(f"data.options.columns.{self.name}: no value in the training split is a number "
                            "(every cell is missing)")
        return FittedColumn(self.name, self.index, "numeric", self.column, mean=self.mean,
                            variance=self.m2 / self.count)


def numbers_or_nan(cells: np.ndarray, missing: tuple) -> np.ndarray:
    """Text cells -> float64, NaN where a cell is a missing marker (as ParsedNumber reads them)."""
    cells = np.where(np.isin(cells, list(missing)), "nan", cells)
    return np.asarray(cells, dtype=str).astype(np.float64)


def as_text(cells) -> np.ndarray:
    """A column of cells as a NumPy str array (a string tensor's cells are UTF-8 bytes)."""
    cells = np.asarray(cells.numpy() if hasattr(cells, "numpy") else cells)
    if cells.dtype.kind == "S" or (cells.dtype == object and cells.size and isinstance(cells.flat[0], bytes)):
        return np.char.decode(cells.astype("S"), "utf-8")
    return cells.astype(str)


def _strings(cells):
    """A column of cells as Keras's lookup layers take them (tensors as they are)."""
    return cells if hasattr(cells, "numpy") else np.asarray(cells, dtype=str)


class _Category(_Fitter):
    """StringLookup's own adapt, a batch at a time (update_state), finalized once."""

    def __init__(self, *args):
        import keras

        super().__init__(*args)
        self.lookup = keras.layers.StringLookup()
        self.lookup.reset_state()

    def update(self, cells) -> None:
        self.lookup.update_state(_strings(cells))

    def result(self) -> FittedColumn:
        self.lookup.finalize_state()
        vocabulary = tuple(self.lookup.get_vocabulary(include_special_tokens=False))
        if len(vocabulary) > self.column["max_values"]:
            raise DataError(f"data.options.columns.{self.name}: {len(vocabulary):,} distinct values in the training "
                            f"split, more than max_values {self.column['max_values']:,}; use type: hashed (with "
                            "bins), or raise max_values")
        return FittedColumn(self.name, self.index, "category", self.column, vocabulary=vocabulary)


def _text_layer(column: dict, mode: str, vocabulary=None, idf=None, name: str | None = None):
    import keras

    return keras.layers.TextVectorization(
        max_tokens=column["max_tokens"], output_mode=mode, ngrams=column["ngrams"],
        output_sequence_length=column["sequence_length"] if mode == "int" else None,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
        idf_weights=list(idf) if idf is not None else None, name=name)


class _Text(_Fitter):
    """TextVectorization's own adapt, a batch at a time: the vocabulary and, for tf_idf, each
    learned token's log(1 + N / (1 + documents holding it)), counted by Keras in the same pass."""

    def __init__(self, *args):
        super().__init__(*args)
        self.layer = _text_layer(self.column, self.column["output_mode"])
        self.layer.reset_state()

    def update(self, cells) -> None:
        self.layer.update_state(_strings(cells))

    def result(self) -> FittedColumn:
        self.layer.finalize_state()
        vocabulary = tuple(self.layer.get_vocabulary(include_special_tokens=False))
        if not vocabulary:
            raise DataError(f"data.options.columns.{self.name}: the training split's texts hold no words")
        idf = None
        if self.column["output_mode"] == "tf_idf":
            # Keras keeps the weights it learned on its lookup layer only (no public getter); they
            # are padded in front for the special tokens, as get_vocabulary(True) lists them.
            special = len(self.layer.get_vocabulary()) - len(vocabulary)
            weights = np.asarray(self.layer._lookup_layer.idf_weights_const)
            idf = tuple(float(v) for v in weights[special:special + len(vocabulary)])
        return FittedColumn(self.name, self.index, "text", self.column, vocabulary=vocabulary, idf=idf)


_FITTERS = {"numeric": _Numeric, "category": _Category, "hashed": _Fitter, "text": _Text}


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
