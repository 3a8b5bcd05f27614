"""`python -m tftrain` is the same program as the `tftrain` console script."""

from tftrain.cli import main

main()
