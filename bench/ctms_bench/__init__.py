"""The CTMS load benchmark (issue #8, docs/contract.md §16.1): `python bench/run.py --help`."""
