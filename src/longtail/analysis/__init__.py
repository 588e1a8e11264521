"""Studies, figures and result tables built from run directories."""
