"""The mapping search: BatchTile (every tiling and loop order of many layers as one batch), the supernet's candidate
cost table and the per-layer mapping report of ``jaqc map``."""
