"""The routing engine: scoring, the batch assignment solve and the discrete-event simulator.

Pure numpy/scipy, no Django (an import-linter contract keeps it so): the Django app feeds it plain
arrays and dataclasses, and a data scientist can run the simulator on its own.
"""
