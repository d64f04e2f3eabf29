"""TF Serving protocol: configuration files, an embedded REST + gRPC server, and clients.

Nothing here imports training code, so a serving process stays small.
"""
