"""ONNX export: bpnet's own inference forward, recorded on ndonnx arrays.

``export_onnx`` runs a network's (or a fitted estimator's) prediction on
arrays that build an ONNX graph instead of holding numbers, so a layer
written on the Array API exports with no code of its own. ``converter``
teaches skl2onnx the estimators, so a scikit-learn pipeline that holds one
converts with ``skl2onnx.to_onnx``. Needs the ``onnx`` extra.
"""

from bpnet.export import converter
from bpnet.export.heads import ExportError
from bpnet.export.onnx_graph import export_onnx

__all__ = ["ExportError", "export_onnx"]

converter.register_when_imported()
