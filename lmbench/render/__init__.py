"""Rendering stored records: the seed-format timing report (Markdown, CSV, LaTeX) and its plots."""
