"""Why an installation underperforms: rules over the ledger and samples -> findings. Pure."""
