"""Query: DuckDB views over the tables, and the timeline plots."""
