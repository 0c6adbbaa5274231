"""MLflow: runs written and brought up to date from the trials' records; tracking URIs as users see them."""
