"""Reports: markdown/CSV/JSON tables (:mod:`.tables`) and PNG plots (:mod:`.plots`)."""
