"""Score scale: the frozen anchor set and each model version's calibration map."""
