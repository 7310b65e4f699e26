"""Traffic signals: the engine (pure), plans in the database, pushed to cabinets."""
