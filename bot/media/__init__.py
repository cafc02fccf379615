"""Media: guarded downloads, the network policy, re-encoding and keyframe images.

Import from the submodules: importing this package loads no HTTP client.
"""
