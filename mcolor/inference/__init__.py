"""Inference: predictions for a folder of DICOM files (``mcolor infer``) or a manifest split (the bundle).

Reads as the run: ``rules`` (chest-radiograph selection, header only) -> ``scan`` (every file becomes a
:class:`~mcolor.inference.scan.FileRecord`) -> ``models`` (the model, loaded once; TorchScript when the
bundle ships it) -> ``batching`` (DataLoader + failure-tolerant collate + MONAI ``SupervisedEvaluator``)
-> ``predictions`` (probabilities and decisions into the records) -> ``outputs`` (CSV/JSON), ``sr``
(DICOM SR per study), ``previews`` (panels + Grad-CAM) and ``report_html`` (``index.html``). ``runner``
ties them together for the CLI; the bundle's ``inference.json`` wires the same pieces.
"""
