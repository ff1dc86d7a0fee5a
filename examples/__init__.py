"""eventkeep's examples; run them from the repository root (``import examples.bank``)."""
