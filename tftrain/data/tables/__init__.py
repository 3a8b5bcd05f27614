"""Tables: CSV files with one label column and feature columns."""
