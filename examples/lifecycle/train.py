"""Step train: a PyTorch MLP (64 → 64 → 10) on the training rows, its loss logged to the step's MLflow
run (tuxai gives the job MLFLOW_RUN_ID), exported as ONNX with the training data's drift statistics."""

import json
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from tuxai.serving.drift import Reference

data = np.load(os.environ["PIPELINE_INPUT_DATA"] + "/digits.npz")
x, y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
torch.manual_seed(0)
torch.set_num_threads(1)  # a model this small: threads only contend (150 steps took 29 s on 2 busy cores, 3 s on one)
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
tracked = "MLFLOW_RUN_ID" in os.environ
if tracked:
    import mlflow
for epoch in range(60):  # full batch: 0.967 on the held-out rows (150 steps: 0.978)
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    if tracked and epoch % 10 == 9:
        mlflow.log_metric("loss", float(loss), step=epoch)

# ONNX: the two layers as Gemm (weights as torch keeps them, out × in: transB), Relu between.
first, second = model[0], model[2]
weights = [numpy_helper.from_array(t.detach().numpy(), name) for t, name in (
    (first.weight, "w0"), (first.bias, "b0"), (second.weight, "w1"), (second.bias, "b1"))]  # fmt: skip
graph = helper.make_graph(
    [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w1", "b1"], ["y"], transB=1),
    ],
    "digits",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
    weights,
)
onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx_model.ir_version = 8
onnx.checker.check_model(onnx_model)
out = os.environ["PIPELINE_OUTPUT_MODEL"]
onnx.save(onnx_model, f"{out}/model.onnx")
# What the server compares its inputs with: the features as it names them (x[0] … x[63]).
reference = Reference.from_columns({f"x[{j}]": data["x_train"][:, j] for j in range(64)})
with open(f"{out}/drift-reference.json", "w") as file:
    json.dump(reference.to_json(), file)
print(f"trained: loss {float(loss):.4f}")
