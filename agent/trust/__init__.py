"""Signatures, keys and verification: what lets a recipient trust a message."""
