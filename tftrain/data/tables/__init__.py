"""Tables with typed columns (csv and jsonl with `options.columns`): raw rows in, raw rows kept.

A typed table is read as text: the model's input is one row of raw cells per example (a string
matrix, blanks and all), and the model itself parses, fills, normalizes, looks up and hashes
them with Keras's preprocessing layers, fitted once on the training split
(tftrain.data.tables.preprocessing). So `model.keras`, `tftrain predict RUN rows.csv` and the
exported SavedModel all take rows exactly as the file has them.

- csv.py: CSV files whose columns are all numbers (no `columns`), in memory or streamed;
- rows.py: reading CSV and JSON Lines files into cells, with the file, line and column of each;
- typed.py: the loader (checks, labels) -> LoadedData of string rows;
- streamed.py: the same past `data.in_memory_max_mb` -> StreamedData of the files' lines;
- preprocessing.py: the fitted statistics and vocabularies (plain data) and the Keras layers built from them;
- layers.py: the two layers Keras has no equivalent of (a column of a string row, a parsed number);
- fit.py: where the plan fits the preprocessing (training split only, one pass, in memory or
  streamed); state.py: its fingerprint
  in the resume state.
"""
