"""The shared scoring core: model bundle and its store, TreeSHAP, reasons and the decision rules."""
