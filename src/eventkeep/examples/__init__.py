"""Complete, tested examples shipped with eventkeep (``eventkeep demo`` runs the bank)."""
