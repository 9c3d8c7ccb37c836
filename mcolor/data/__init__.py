"""Data: manifests (the one way datasets enter mcolor), builders, subsets, datasets, synthetic phantoms."""
