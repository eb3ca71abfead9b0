"""The built-in rater backends: each module registers one or more with @register_backend.

Every module here is imported on the first backend look-up (raters/backend.py),
so a new built-in backend is one new module in this folder.
"""
