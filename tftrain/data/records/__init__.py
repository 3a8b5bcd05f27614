"""Record files that stream from disk: TFRecord shards and tensorflow-datasets' prepared files."""
