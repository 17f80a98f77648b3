//! CMS structure and certificate identities: crash, eContentType, name-constraint evasion, shared key identifiers, decryption oracle (issue #11 items 1, 5, 6, 8, 11).
