"""Model serving: a model repository, ONNX Runtime / PyTorch / TensorFlow loaders, dynamic
batching, and the Open Inference Protocol (KServe v2) REST API as a raw ASGI app."""
