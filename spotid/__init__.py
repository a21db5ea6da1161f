"""spotid: camera-trap SD cards to an Amur leopard census."""
__version__ = "0.1.0"
