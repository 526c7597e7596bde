"""Step evaluate: the ONNX model's accuracy on the held-out rows, with ONNX Runtime (what serves it)."""

import json
import os

import numpy as np
import onnxruntime

data = np.load(os.environ["PIPELINE_INPUT_DATA"] + "/digits.npz")
session = onnxruntime.InferenceSession(os.environ["PIPELINE_INPUT_MODEL"] + "/model.onnx")
(logits,) = session.run(["y"], {"x": data["x_test"]})
accuracy = float(np.mean(logits.argmax(axis=1) == data["y_test"]))
if "MLFLOW_RUN_ID" in os.environ:
    import mlflow

    mlflow.log_metric("accuracy", accuracy)
with open(os.environ["PIPELINE_OUTPUT_SCORE"] + "/score.json", "w") as file:
    json.dump({"accuracy": accuracy, "rows": len(data["y_test"])}, file)
print(f"accuracy {accuracy:.4f} on {len(data['y_test'])} held-out rows")
