"""Adapters to the outside world: object stores (S3, a local directory), the MongoDB catalog, nx-27017.

Each is a small class given an already-built client, with no retries inside (the Prefect tasks
retry). Importing this package imports nothing heavy: boto3 and pymongo load where they are used.
"""
