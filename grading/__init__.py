"""Grading submitted lab notebooks: execute (execute.py) in a sandbox (sandbox.py), export the variables
from the kernel (export.py), judge them outside it (checks.judge), keep each result (store.py) and
report (report.py). `tools/grade.py` is the command line; `grading.run.grade` the entry point."""
