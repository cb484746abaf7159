"""Storage: object store (file:// and s3://) and the prediction log (SQLAlchemy)."""
