"""`ctms sync`: the Acoustic sync worker (R§4.2, SPEC §7)."""
