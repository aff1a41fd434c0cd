"""The tamper-evident audit log: a Merkle tree over entries, proofs and signed checkpoints."""
