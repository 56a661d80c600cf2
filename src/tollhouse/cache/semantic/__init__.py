"""The semantic cache (needs the ``semantic`` extra: numpy, tokenizers, safetensors and the model weights).

Import from the submodules; this package imports nothing so that ``tollhouse.cache`` stays
importable without numpy.
"""
