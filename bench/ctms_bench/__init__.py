"""The CTMS load benchmark (issue #8, SPEC §9): `python bench/run.py --help`."""
