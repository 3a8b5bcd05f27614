"""Text datasets: `text_folder` (one sub-folder per class, one example a file).

Texts are kept as they are: the model's input is the raw string, and TextVectorization inside
the model (fitted on the training split, tftrain.data.tables.preprocessing) turns it into
token ids, multi-hot, count or tf-idf vectors; so predict and the SavedModel take raw strings.
"""
