"""Sweeps of the ResNet papers: sweep files -> specs -> trials on Ray Tune -> MLflow -> reports (see README.md)."""
