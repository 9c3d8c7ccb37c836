"""Inference: predictions for images or DICOM folders with a trained model."""
