"""From stored records only: stateless functions that return DataFrames (tables, memory, groups and their
names, the one decision rule, fits) and findings/, one module per topic."""
