"""The MONAI bundles shipped with mcolor, installed as ``mcolor.bundles`` (see ``mcolor bundle path``)."""
