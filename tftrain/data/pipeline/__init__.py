"""The pipeline machinery every dataset family shares: the seeded, stateless batch order (batch s
is a pure function of seed and s) for data in memory (`batches`) and streamed from record files
(`streaming`), the transform a training batch goes through once gathered (`transforms`: label
encoding, class weights, augmentation), and the per-channel statistics (`normalization`)."""
