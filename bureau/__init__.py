"""hazmon.bureau: the bureau platform — what every enterprise of a region reports, warnings, figures, the bureau's API."""
