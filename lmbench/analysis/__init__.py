"""Stateless analysis of stored records: small functions that return pandas DataFrames or findings."""
