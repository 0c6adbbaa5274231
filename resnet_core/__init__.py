"""The ResNet/ResNeXt model family, data and training as a library: knows nothing of Ray, MLflow or sweeps."""
