"""Studies that train several runs and compare them, with their tables and figures."""
