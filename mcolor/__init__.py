"""mcolor: a learned colorization module in front of ImageNet backbones for radiographs.

Implements Morra, Piano, Lamberti, Tommasi, "Bridging the gap between Natural and Medical Images
through Deep Colorization" (ICPR 2020, arXiv 2005.10589) as MONAI bundles.

The package reads as the pipeline: ``io -> transforms -> data -> networks -> engines -> inference -> cli``.
"""

__version__ = "0.2.0"
