"""jaqc.hw."""
