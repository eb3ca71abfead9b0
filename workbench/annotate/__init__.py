"""Human norming campaigns through Label Studio: push lists of items, pull annotations back as ratings.

Modules: ``server`` (start a local Label Studio), ``connection`` (URL, key and
the label-studio-sdk client), ``labelconfig`` (the rating interface generated
from a dimension), ``lists`` (items into lists, control items), ``push``,
``pull``, ``quality`` (exclusions and the aggregate), ``status``,
``uncertainty`` (item sets ranked by how unsure models are).
"""
