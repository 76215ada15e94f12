"""Report stage: tables, figures, manifest and (later) the brief. Reads results, never refits."""
