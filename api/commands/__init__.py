"""Sub-commands of the `vidsight` console script."""
