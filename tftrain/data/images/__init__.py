"""Image datasets: the Keras seed sets (mnist, fashion_mnist, cifar10) from their own files, user
.npz arrays, and folders of image files (one sub-folder per class)."""
