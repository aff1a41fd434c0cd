"""Compliance reports over the store and the audit log: usage, violations, keys, access, SOC 2 evidence, GDPR DSR."""
