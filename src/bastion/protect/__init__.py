"""Data protection: find sensitive values in text and keep them away from the vendor."""
