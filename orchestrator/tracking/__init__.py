"""MLflow: runs written and brought up to date from the trials' records, read back, and tracking URIs as users see."""
