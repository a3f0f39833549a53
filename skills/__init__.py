"""The skill model: records, task adapters, catalogues, labels and the profile logic.

Pure Python over plain records; imports neither Ray nor torch, so it tests in milliseconds.
"""
