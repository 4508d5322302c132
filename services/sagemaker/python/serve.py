"""Basalt's model worker: SageMaker's inference toolkit without its HTTP server.

Loads the user's inference script (SAGEMAKER_PROGRAM in SAGEMAKER_SUBMIT_DIRECTORY, by
default inference.py in /opt/ml/model/code), calls model_fn(model_dir) once, then serves
requests: transform_fn(model, body, content_type, accept) when the script has one, else
input_fn -> predict_fn -> output_fn, each falling back to the toolkit's default (JSON, CSV
and NPY in and out). Requests and answers are JSON lines on stdin and on the original
stdout; whatever the script prints goes to stderr, which Basalt sends to CloudWatch Logs.
"""
import base64
import importlib.util
import json
import os
import sys
import traceback

PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)


def send(message):
    PROTOCOL.write(json.dumps(message) + "\n")
    PROTOCOL.flush()


class UnsupportedFormatError(Exception):
    status = 415


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def default_input_fn(body, content_type):
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind == "application/x-npy":
        import io
        import numpy as np
        return np.load(io.BytesIO(bytes(body)), allow_pickle=False)
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    if kind == "application/json":
        return json.loads(text)
    if kind == "text/csv":
        return [[float(x) for x in line.split(",")] for line in text.strip().splitlines() if line.strip()]
    raise UnsupportedFormatError(f"Content type {content_type} is not supported by this deserialization function")


def default_predict_fn(data, model):
    # scikit-learn's container calls predict; PyTorch's calls the model.
    if hasattr(model, "predict"):
        return model.predict(data)
    return model(data)


def default_output_fn(prediction, accept):
    kind = (accept or "application/json").split(";")[0].strip().lower()
    if kind == "application/x-npy":
        import io
        import numpy as np
        buf = io.BytesIO()
        np.save(buf, np.asarray(prediction), allow_pickle=False)
        return buf.getvalue(), "application/x-npy"
    prediction = _plain(prediction)
    if kind in ("application/json", "*/*"):
        return json.dumps(prediction), "application/json"
    if kind == "text/csv":
        rows = prediction if isinstance(prediction, list) else [prediction]
        lines = [",".join(str(v) for v in (r if isinstance(r, list) else [r])) for r in rows]
        return "\n".join(lines), "text/csv"
    raise UnsupportedFormatError(f"Accept type {accept} is not supported by this serialization function")


def load_script():
    program = os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
    directory = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY") or os.path.join(os.environ["SM_MODEL_DIR"], "code")
    path = os.path.join(directory, program)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The inference script {program} is not in {directory}")
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(os.path.splitext(program)[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    try:
        script = load_script()
        if not hasattr(script, "model_fn"):
            raise NotImplementedError("Please provide a model_fn implementation. "
                                      "See documentation for model_fn at https://sagemaker.readthedocs.io/en/stable/")
        model = script.model_fn(os.environ["SM_MODEL_DIR"])
    except Exception as e:
        traceback.print_exc()
        send({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    send({"ready": True})
    transform_fn = getattr(script, "transform_fn", None)
    input_fn = getattr(script, "input_fn", default_input_fn)
    predict_fn = getattr(script, "predict_fn", default_predict_fn)
    output_fn = getattr(script, "output_fn", None)
    for line in sys.stdin:
        request = json.loads(line)
        body = base64.b64decode(request["body"])
        content_type = request.get("content_type") or "application/json"
        accept = request.get("accept") or "application/json"
        try:
            if transform_fn is not None:
                result = transform_fn(model, body, content_type, accept)
            else:
                prediction = predict_fn(input_fn(body, content_type), model)
                result = output_fn(prediction, accept) if output_fn else default_output_fn(prediction, accept)
            if isinstance(result, tuple):
                result, out_type = result[0], result[1]
            else:
                out_type = accept
            if isinstance(result, str):
                result = result.encode("utf-8")
            elif not isinstance(result, (bytes, bytearray)):
                result = json.dumps(_plain(result)).encode("utf-8")
            send({"status": 200, "body": base64.b64encode(bytes(result)).decode(), "content_type": out_type})
        except Exception as e:
            traceback.print_exc()
            send({"status": getattr(e, "status", 500), "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
