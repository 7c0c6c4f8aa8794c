"""Home occupancy: the facts the detectors keep, planned absences, the state at night."""
