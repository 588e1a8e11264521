"""Data: sources, long-tailed subsets, samplers, augmentation pipelines and streams."""

from .benchmark_sets import load_benchmark
from .longtail import longtailed_indices, profile_counts, shot_groups
from .samplers import SAMPLERS
from .sources import SOURCES, DatasetNotFound, DataSource, ImageSet
from .streams import Batch, make_stream
from .transforms import TRANSFORMS, Pipeline

__all__ = [
    "SAMPLERS", "SOURCES", "TRANSFORMS", "Batch", "DataSource", "DatasetNotFound", "ImageSet",
    "Pipeline", "load_benchmark", "longtailed_indices", "make_stream", "profile_counts", "shot_groups",
]
