"""Sketches of matrix streams: the EMA three-sketch, Frequent Directions, and rank control."""
from pinnsketch.sketch.frequent_directions import FrequentDirections
from pinnsketch.sketch.rank import RankController
from pinnsketch.sketch.three_sketch import PRESETS, ThreeSketch, sketch_sizes

__all__ = ["PRESETS", "FrequentDirections", "RankController", "ThreeSketch", "sketch_sizes"]
