"""Exporting trained models as versioned TF Serving SavedModels with stable signature names."""
