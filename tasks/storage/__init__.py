"""Storage: sources (discovery), filesystems, and the one writer of tables."""
