"""`ctms sync`: the Acoustic sync worker (docs/contract.md §9)."""
