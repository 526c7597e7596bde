"""Step register: the model (ONNX and its drift statistics) logged on this step's MLflow run and
registered as a new version of "digits"; @champion moves to it only if it beats the current one."""

import json
import os

from mlflow import MlflowClient

NAME = "digits"
model_dir, score = os.environ["PIPELINE_INPUT_MODEL"], os.environ["PIPELINE_INPUT_SCORE"] + "/score.json"
accuracy = json.load(open(score))["accuracy"]
client = MlflowClient()  # MLFLOW_TRACKING_URI: tuxai gave the job the store of its run
run_id = os.environ["MLFLOW_RUN_ID"]
for name in ("model.onnx", "drift-reference.json"):
    client.log_artifact(run_id, f"{model_dir}/{name}", artifact_path="model")
client.log_metric(run_id, "accuracy", accuracy)
if not client.search_registered_models(f"name = '{NAME}'"):
    client.create_registered_model(NAME)
artifacts = client.get_run(run_id).info.artifact_uri
version = client.create_model_version(NAME, f"{artifacts}/model", run_id=run_id, tags={"accuracy": str(accuracy)})
try:
    champion = client.get_model_version_by_alias(NAME, "champion")
    best = float(champion.tags.get("accuracy", "0"))
except Exception:  # no champion yet
    champion, best = None, -1.0
if accuracy > best:
    client.set_registered_model_alias(NAME, "champion", version.version)
    print(f"version {version.version} ({accuracy:.4f}) is @champion")
else:
    print(f"version {version.version} ({accuracy:.4f}) registered; @champion stays version {champion.version}")
with open(os.environ["PIPELINE_OUTPUT_VERSION"] + "/version.json", "w") as file:
    json.dump({"name": NAME, "version": version.version, "accuracy": accuracy}, file)
