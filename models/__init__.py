"""Topic and sentiment classification: data, training, export and the ONNX runtime.

Plain Python with no Kafka import, so a notebook can use it. torch and transformers are
imported only by the training-side modules (`train`, `network`, `export`), never by `runtime`.
"""
