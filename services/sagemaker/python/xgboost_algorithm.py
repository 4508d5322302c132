"""Basalt's built-in XGBoost algorithm: SageMaker's XGBoost container in algorithm mode.

Reads the job's /opt/ml/input/config (hyperparameters.json, inputdataconfig.json), trains
with the xgboost library on the `train` channel (and `validation` when given), prints each
round's evaluation in the container's log format (`[3]#011train-logloss:0.1#011validation-
logloss:0.2`), and saves the model in XGBoost's JSON format as /opt/ml/model/xgboost-model
(xgboost.Booster().load_model reads it). Inputs: text/csv (label in the first column, no
header), text/libsvm, application/x-parquet (label in the first column) and
application/x-recordio-protobuf (RecordIO records of SageMaker's
`aialgs.data.Record` protobuf, dense or sparse `values` features and a `values` label, as the
SageMaker Python SDK's `write_numpy_to_dense_tensor` and `write_spmatrix_to_sparse_tensor`
write them), from every file of a channel, or from its first epoch's FIFO in Pipe mode. A
problem is written to
/opt/ml/output/failure, as the container does, and the process exits with 1.
"""
import glob
import json
import os
import struct
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


RECORDIO_MAGIC = 0xCED7230A
LIBSVM = ("text/libsvm", "text/x-libsvm", "libsvm")
PARQUET = ("application/x-parquet",)


def load_parquet(channel, paths, xgb, np):
    """Parquet files: the label in the first column, every column numeric, as the
    container reads them (pyarrow); the files of a channel must share their columns."""
    allow_pandas()
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        fail(f"AlgorithmError: pyarrow is not installed in the SageMaker environment "
             f"(basalt runtimes pull): {e}")
    tables = []
    for p in paths:
        if os.path.getsize(p) == 0:
            continue
        try:
            t = pq.read_table(p)
        except (pa.ArrowException, OSError) as e:
            fail(f"ClientError: Loading parquet data failed with Exception, please ensure data is in parquet format: {e}")
        if t.num_rows:
            tables.append(t)
    if not tables:
        fail(f"ClientError: No data in the {channel} channel.")
    widths = {t.num_columns for t in tables}
    if len(widths) > 1:
        fail(f"ClientError: the files of the {channel} channel have different numbers of columns: {sorted(widths)}")
    if tables[0].num_columns < 2:
        fail(f"ClientError: the {channel} channel needs a label column and at least one feature column.")
    columns = []
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    for i in range(tables[0].num_columns):
        for t in tables:
            field = t.schema.field(i)
            if not any(is_type(field.type) for is_type in numeric):
                fail(f"ClientError: the {channel} channel's column {field.name!r} is not numeric "
                     f"({field.type}); every column of a Parquet channel must be.")
        # Nulls become NaN, a missing value to xgboost; integers past 2^24 round, as they do
        # in every float32 matrix xgboost trains on.
        try:
            parts = [float32s(t.column(i), pa, np) for t in tables]
        except (pa.ArrowException, ValueError) as e:
            fail(f"ClientError: the {channel} channel's column {tables[0].schema.field(i).name!r} "
                 f"cannot be read as numbers: {e}")
        columns.append(np.concatenate(parts))
    data = np.column_stack(columns)
    if np.isnan(data[:, 0]).any():
        fail(f"ClientError: the {channel} channel has rows without a label (the label is the first column).")
    return xgb.DMatrix(data[:, 1:], label=data[:, 0])


def recordio(data):
    """MXNet RecordIO records (dmlc-core's layout: a record cut where the magic number occurred
    is joined again with the magic number between its parts)."""
    # `current`: the record being joined, None between records.
    records, current, at = [], None, 0
    while at + 8 <= len(data):
        magic, word = struct.unpack_from("<II", data, at)
        if magic != RECORDIO_MAGIC:
            raise ValueError(f"not RecordIO: bad magic number at byte {at}")
        flag, length = word >> 29, word & ((1 << 29) - 1)
        end = at + 8 + length
        if end > len(data):
            raise ValueError("a RecordIO record runs past the end of the data")
        if flag > 3:
            raise ValueError(f"a RecordIO record at byte {at} has the flag {flag} (0 to 3 are defined)")
        if (flag in (2, 3)) != (current is not None):
            raise ValueError(f"a RecordIO record part at byte {at} does not continue a record"
                             if flag in (2, 3) else f"a RecordIO record at byte {at} starts inside another")
        if flag in (2, 3):
            current += struct.pack("<I", RECORDIO_MAGIC)
        else:
            current = b""
        current += data[at + 8:end]
        if flag in (0, 3):
            records.append(current)
            current = None
        at = end + (4 - length % 4) % 4
    if at != len(data) or current is not None:
        raise ValueError("the RecordIO data ends inside a record")
    return records


def protobuf_fields(buf):
    """(field number, wire type, value) of a protobuf message: an int for varints, bytes for
    the other wire types."""
    at, n = 0, len(buf)

    def varint():
        nonlocal at
        shift = result = 0
        while True:
            if at >= n:
                raise ValueError("truncated protobuf varint")
            b = buf[at]
            at += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    while at < n:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire == 1:
            yield field, wire, buf[at:at + 8]
            at += 8
        elif wire == 2:
            size = varint()
            yield field, wire, buf[at:at + size]
            at += size
        elif wire == 5:
            yield field, wire, buf[at:at + 4]
            at += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if at > n:
            raise ValueError("truncated protobuf message")


def protobuf_tensor(buf, value_type, np):
    """A Float32Tensor, Float64Tensor or Int32Tensor: (values, keys, shape)."""
    values, keys, shape = [], [], []
    fmt = {"f32": "<f4", "f64": "<f8"}.get(value_type)
    for field, wire, v in protobuf_fields(buf):
        if field == 1:
            if value_type == "i32":
                items = _varints(v) if wire == 2 else [v]
                values.extend(x - (1 << 64) if x >= 1 << 63 else x for x in items)
            elif wire == 2:
                values.extend(np.frombuffer(v, dtype=fmt).tolist())
            else:
                values.append(np.frombuffer(v, dtype=fmt)[0].item())
        elif field == 2:
            keys.extend(_varints(v) if wire == 2 else [v])
        elif field == 3:
            shape.extend(_varints(v) if wire == 2 else [v])
    return values, keys, shape


def _varints(data):
    """The varints of a packed repeated field."""
    out, shift, result = [], 0, 0
    for b in data:
        result |= (b & 0x7F) << shift
        if b < 0x80:
            out.append(result)
            shift = result = 0
        else:
            shift += 7
    if shift:
        raise ValueError("truncated protobuf varint")
    return out


def protobuf_map(buf, np):
    """One entry of a `map<string, Value>`: (name, (values, keys, shape))."""
    name, tensor = "", ([], [], [])
    for field, _, v in protobuf_fields(buf):
        if field == 1:
            if not isinstance(v, bytes):
                raise ValueError("a map entry's name is not a string")
            name = v.decode()
        elif field == 2:
            for kind, _, t in protobuf_fields(v):
                types = {2: "f32", 3: "f64", 7: "i32"}
                if kind not in types:
                    raise ValueError("only float32, float64 and int32 tensors can be trained on")
                tensor = protobuf_tensor(t, types[kind], np)
    return name, tensor


def load_protobuf(channel, paths, xgb, np):
    """A DMatrix from aialgs.data.Record messages: the `values` feature and `values` label."""
    rows, labels, sparse, width = [], [], False, 0
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        if not data:
            continue
        for record in recordio(data):
            features, label = {}, {}
            for field, _, v in protobuf_fields(record):
                if field in (1, 2):
                    name, tensor = protobuf_map(v, np)
                    (features if field == 1 else label)[name] = tensor
            if "values" not in features:
                raise ValueError("a record has no 'values' feature")
            values, keys, shape = features["values"]
            if keys:
                sparse = True
                width = max(width, shape[-1] if shape else max(keys) + 1)
            else:
                width = max(width, len(values))
            rows.append((values, keys))
            label_values = label.get("values", ([], [], []))[0]
            if not label_values:
                raise ValueError("a record has no 'values' label")
            labels.append(label_values[0])
    if not rows:
        fail(f"ClientError: No data in the {channel} channel.")
    y = np.asarray(labels, dtype=np.float32)
    if not sparse:
        if len({len(v) for v, _ in rows}) > 1:
            raise ValueError("dense records of different lengths")
        return xgb.DMatrix(np.asarray([v for v, _ in rows], dtype=np.float32), label=y)
    from scipy.sparse import csr_matrix
    data, indices, indptr = [], [], [0]
    for values, keys in rows:
        if keys:
            data.extend(values)
            indices.extend(keys)
        else:
            data.extend(values)
            indices.extend(range(len(values)))
        indptr.append(len(data))
    m = csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64),
                    np.asarray(indptr, dtype=np.int64)), shape=(len(rows), width))
    return xgb.DMatrix(m, label=y)


def kind_of(config):
    """A channel's content type without parameters (libsvm when none is given, as in the
    container)."""
    return (config.get("ContentType") or "text/libsvm").split(";")[0].strip().lower()


def allow_pandas():
    """Undoes main()'s block of pandas, for the readers that need it (pyarrow's Parquet reader
    looks pandas up in sys.modules, and trips on the block)."""
    if "pandas" in sys.modules and sys.modules["pandas"] is None:
        del sys.modules["pandas"]


def float32s(column, pa, np):
    """A pyarrow column as float32 numbers, nulls as NaN. By its buffers: pyarrow's own
    to_numpy and fill_null import pandas, a quarter of a second."""
    a = column.cast(pa.float32(), safe=False).combine_chunks()
    values = np.frombuffer(a.buffers()[1], dtype=np.float32, count=len(a), offset=a.offset * 4)
    if a.null_count:
        valid = np.unpackbits(np.frombuffer(a.buffers()[0], dtype=np.uint8), bitorder="little")
        values = values.copy()
        values[valid[a.offset:a.offset + len(a)] == 0] = np.nan
    return values


def read_csv_pyarrow(path, np):
    """The matrix pyarrow reads, or None where it reads no numbers (or is not installed: an
    environment pulled before pyarrow was part of it)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pc
    except ImportError:
        return None
    try:
        table = pc.read_csv(path, read_options=pc.ReadOptions(autogenerate_column_names=True))
    except (pa.ArrowException, ValueError):
        return None
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_null)
    if not all(any(t(c.type) for t in numeric) for c in table.columns):
        return None
    if table.num_columns == 0:
        return np.empty((0, 0), dtype=np.float32)
    return np.column_stack([float32s(c, pa, np) for c in table.columns])


def read_csv(path, np):
    """A headerless CSV file as a float32 matrix, an empty field a missing value (NaN), as in
    the container. pyarrow's reader first (pandas, which xgboost would import too, costs a
    quarter of a second at start); pandas' C parser for what pyarrow does not read as numbers
    (spaces around a number, say)."""
    data = read_csv_pyarrow(path, np)
    if data is not None:
        return data
    allow_pandas()
    import pandas as pd
    try:
        return pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    except ValueError as e:
        fail(f"ClientError: Loading csv data failed with Exception, please ensure data is in csv format: {e}")


def load(channel, config, xgb, np):
    content_type = config.get("ContentType")
    kind = kind_of(config)
    paths = files_of(channel, config.get("TrainingInputMode", "File"))
    if kind == "text/csv":
        blocks = []
        for p in paths:
            if os.path.getsize(p) == 0:
                continue
            data = read_csv(p, np)
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
    if kind in LIBSVM:
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
    if kind in PARQUET:
        return load_parquet(channel, paths, xgb, np)
    if kind == "application/x-recordio-protobuf":
        try:
            return load_protobuf(channel, paths, xgb, np)
        # Whatever the decoder trips on is in the data (a field of the wrong wire type, a
        # varint past the end), never the algorithm's fault.
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, struct.error) as e:
            fail(f"ClientError: the {channel} channel is not RecordIO-protobuf data: {e}")
    fail(f"ClientError: Content type {content_type} is not supported by Basalt's XGBoost algorithm "
         "(text/csv, text/libsvm, application/x-parquet and application/x-recordio-protobuf are).")


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
    if not any(kind_of(c) in LIBSVM for c in channels.values()):
        # xgboost imports scikit-learn, when it is installed, for its estimator classes (half
        # a second, a third of a small job's run); only libsvm channels need it (its reader).
        sys.modules.setdefault("sklearn", None)
    # Likewise pandas (a quarter of a second; xgboost imports it at start and again to ask
    # whether a matrix is a pandas one): the CSV reader uses pyarrow; what needs pandas
    # (Parquet, a CSV file pyarrow cannot read) lets it in first (allow_pandas).
    sys.modules.setdefault("pandas", None)
    try:
        import numpy as np
        import xgboost as xgb
    except ImportError as e:
        fail(f"AlgorithmError: the xgboost library is not installed: {e}")

    if os.environ.get("BASALT_START") == "stdin":
        # Started while the channels download (the imports above take half a second): go on
        # once Basalt says the data is in place; anything else means the job ended first.
        if sys.stdin.readline().strip() != "go":
            sys.exit(0)

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
