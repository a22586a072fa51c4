"""The ground floor: the data contract of a case abstract, the settings and the one error hierarchy.

Every other package may import from here; this package imports from none of them.
"""
