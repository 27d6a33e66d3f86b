"""One module per resource: predictions, deployments, feedback, reports, ops."""
