"""The bone-age CNN: transfer-learning regressor with a sex head, its evaluation and features,
and the prediction API the labelling stage calls on generated images."""
