"""Models by name: ``longtail.models.create("resnet32", num_classes=100)``; trained ones from
``results/``: ``longtail.models.load_pretrained("cifar100_lt/paco_ir100_seed1")``."""

from .backbones import BACKBONES, FeatureExtractor, build_backbone
from .bbn import BilateralBranchNetwork
from .classifier import ImageClassifier
from .heads import HEADS
from .moco import MoCo
from .pretrained import load_pretrained, pretrained_transform
from .registry import MODELS, create
from .two_stage import apply_posthoc

__all__ = ["BACKBONES", "BilateralBranchNetwork", "HEADS", "MODELS", "FeatureExtractor", "ImageClassifier", "MoCo",
           "apply_posthoc", "build_backbone", "create", "load_pretrained", "pretrained_transform"]
