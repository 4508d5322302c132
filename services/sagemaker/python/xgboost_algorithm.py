"""Basalt's built-in XGBoost algorithm: SageMaker's XGBoost container in algorithm mode.

Reads the job's /opt/ml/input/config (hyperparameters.json, inputdataconfig.json), trains
with the xgboost library on the `train` channel (and `validation` when given), prints each
round's evaluation in the container's log format (`[3]#011train-logloss:0.1#011validation-
logloss:0.2`), and saves the model in XGBoost's JSON format as /opt/ml/model/xgboost-model
(xgboost.Booster().load_model reads it). Inputs: text/csv (label in the first column, no
header) and text/libsvm, from every file of a channel, or from its first epoch's FIFO in Pipe
mode. A problem is written to
/opt/ml/output/failure, as the container does, and the process exits with 1.
"""
import glob
import json
import os
import sys

ML = os.path.dirname(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
FAILURE = os.path.join(ML, "output", "failure")

# Hyperparameters the container reads itself, not handed to xgboost.train's params.
NOT_PARAMS = {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
              "_kfold", "_num_cv_round", "_tuning_objective_metric", "_nsplits", "prob_buffer_row"}
REQUIRED = {"num_round"}


def fail(message):
    os.makedirs(os.path.dirname(FAILURE), exist_ok=True)
    with open(FAILURE, "w") as f:
        f.write(message)
    print(message, file=sys.stderr)
    sys.exit(1)


def typed(value):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def files_of(channel, mode="File"):
    if mode == "Pipe":
        # The channel's first epoch, read to its end into a file, as the container does.
        import shutil
        data = os.path.join(ML, "input", "data")
        copy = os.path.join(data, f".{channel}-pipe")
        with open(os.path.join(data, f"{channel}_0"), "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if os.path.getsize(copy) == 0:
            fail(f"ClientError: No data in the {channel} channel.")
        return [copy]
    directory = os.path.join(ML, "input", "data", channel)
    paths = [p for p in sorted(glob.glob(os.path.join(directory, "**", "*"), recursive=True))
             if os.path.isfile(p) and not os.path.basename(p).startswith(".")]
    if not paths:
        fail(f"ClientError: No data in the {channel} channel.")
    return paths


def kind_of(config):
    """A channel's content type without parameters (libsvm when none is given, as in the
    container)."""
    return (config.get("ContentType") or "text/libsvm").split(";")[0].strip().lower()


def load(channel, config, xgb, np):
    content_type = config.get("ContentType")
    kind = kind_of(config)
    paths = files_of(channel, config.get("TrainingInputMode", "File"))
    if kind == "text/csv":
        import pandas as pd
        blocks = []
        for p in paths:
            if os.path.getsize(p) == 0:
                continue
            try:
                # pandas' C parser: an empty field is a missing value (NaN), as in the container.
                data = pd.read_csv(p, header=None, dtype=np.float32).to_numpy()
            except ValueError as e:
                fail(f"ClientError: Loading csv data failed with Exception, please ensure data is in csv format: {e}")
            if data.size:
                blocks.append(data)
        if not blocks:
            fail(f"ClientError: No data in the {channel} channel.")
        widths = {b.shape[1] for b in blocks}
        if len(widths) > 1:
            fail(f"ClientError: the files of the {channel} channel have different numbers of columns: {sorted(widths)}")
        data = np.vstack(blocks)
        if np.isnan(data[:, 0]).any():
            fail(f"ClientError: the {channel} channel has rows without a label (the label is the first column, and a CSV file has no header).")
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    if kind in ("text/libsvm", "text/x-libsvm", "libsvm"):
        from scipy.sparse import vstack
        from sklearn.datasets import load_svmlight_file
        mats, labels = [], []
        for p in paths:
            m, y = load_svmlight_file(p, zero_based=True)
            mats.append(m)
            labels.append(y)
        width = max(m.shape[1] for m in mats)
        mats = [m if m.shape[1] == width else m.__class__((m.data, m.indices, m.indptr), shape=(m.shape[0], width))
                for m in mats]
        return xgb.DMatrix(vstack(mats).tocsr(), label=np.concatenate(labels))
    fail(f"ClientError: Content type {content_type} is not supported by Basalt's XGBoost algorithm "
         "(text/csv and text/libsvm are).")


def main():
    config = os.path.join(ML, "input", "config")
    with open(os.path.join(config, "hyperparameters.json")) as f:
        hyper = json.load(f)
    with open(os.path.join(config, "inputdataconfig.json")) as f:
        channels = json.load(f)
    missing = REQUIRED - set(hyper)
    if missing:
        fail(f"ClientError: Missing required hyperparameter(s): {', '.join(sorted(missing))}")
    if "train" not in channels:
        fail("ClientError: A train channel is required.")
    if all(kind_of(c) == "text/csv" for c in channels.values()):
        # xgboost imports scikit-learn, when it is installed, for its estimator classes (half
        # a second, a third of a small job's run); CSV channels never need them, libsvm ones
        # are read with scikit-learn's reader.
        sys.modules.setdefault("sklearn", None)
    try:
        import numpy as np
        import xgboost as xgb
    except ImportError as e:
        fail(f"AlgorithmError: the xgboost library is not installed: {e}")

    params = {k: typed(v) for k, v in hyper.items() if k not in NOT_PARAMS}
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        params["eval_metric"] = params["eval_metric"].split(",")
    params.setdefault("verbosity", 1)
    num_round = int(hyper["num_round"])

    dtrain = load("train", channels["train"], xgb, np)
    evals = [(dtrain, "train")]
    if "validation" in channels:
        evals.append((load("validation", channels["validation"], xgb, np), "validation"))
    early = hyper.get("early_stopping_rounds")

    class Log(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            parts = [f"[{epoch}]"]
            for data, metrics in evals_log.items():
                for metric, values in metrics.items():
                    parts.append(f"{data}-{metric}:{values[-1]:.5f}")
            print("#011".join(parts), flush=True)
            return False

    try:
        booster = xgb.train(params, dtrain, num_boost_round=num_round, evals=evals,
                            early_stopping_rounds=int(early) if early and len(evals) > 1 else None,
                            verbose_eval=False, callbacks=[Log()])
    except xgb.core.XGBoostError as e:
        fail(f"ClientError: {str(e).splitlines()[0]}")

    model_dir = os.environ.get("SM_MODEL_DIR", os.path.join(ML, "model"))
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, ".xgboost-model.json")
    booster.save_model(tmp)
    os.replace(tmp, os.path.join(model_dir, "xgboost-model"))


if __name__ == "__main__":
    main()
