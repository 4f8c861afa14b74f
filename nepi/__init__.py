"""nepi: describe a network experiment once, deploy it on netns, ns-3 or both."""

__version__ = "3.0.0.dev0"
