"""jaqc.nn."""
