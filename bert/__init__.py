"""BERT fine-tuning on GLUE with TensorFlow Estimators (TF 1.15 and TF 2.x through tf.compat.v1)."""
