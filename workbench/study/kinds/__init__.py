"""The built-in study resource kinds: each module registers one with @register_kind.

Every module here is imported on the first kind look-up (study/kind.py), so a
new built-in kind is one new module in this folder. Their order is not this
folder's: each kind says which kinds it needs, and plan and apply follow.
Modules keep heavy imports inside their functions: loading a study imports them.
"""
