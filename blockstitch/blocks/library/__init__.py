"""The verified plug-and-play library: modules from papers, one family per file, each block with its card.

Every file in this package is imported (and so registers its blocks) by :func:`blockstitch.blocks.load_all`,
and one alone when the registry is asked for one of its kinds (importing this package imports none of them);
adding a family touches only its own file.
"""
